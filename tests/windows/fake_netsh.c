/* A stand-in for netsh.exe under Wine (tests/windows/test_setup.sh): Wine's netsh is a stub
 * that keeps no firewall rule, so this one appends the command line it was given to
 * C:\netsh.log, for the test to read what the installer and uninstaller ask for. */
#include <stdio.h>
#include <string.h>
#include <windows.h>

int main(void)
{
	const char *c = GetCommandLineA();
	if (*c == '"') { /* past the program's own name, quoted or not */
		c = strchr(c + 1, '"');
		c = c != NULL ? c + 1 : "";
	} else {
		while (*c != '\0' && *c != ' ')
			c++;
	}
	while (*c == ' ')
		c++;
	FILE *f = fopen("C:\\netsh.log", "a");
	if (f == NULL)
		return 1;
	fprintf(f, "%s\n", c);
	return fclose(f) == 0 ? 0 : 1;
}
