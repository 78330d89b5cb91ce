/* A stand-in for net.exe under Wine (tests/windows/test_setup.sh): Wine's net knows only
 * start, stop, use and help, not localgroup. This one (system32\net.exe, run by the override
 * net.exe=n) appends its command line to C:\net.log; 'net localgroup ...' ends there (exit 0),
 * anything else is passed to Wine's own net (net.exe=b for it) and its exit code returned. */
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
	FILE *f = fopen("C:\\net.log", "a");
	if (f == NULL)
		return 1;
	fprintf(f, "%s\n", c);
	if (fclose(f) != 0)
		return 1;
	if (_strnicmp(c, "localgroup", 10) == 0)
		return 0;
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "C:\\windows\\system32\\net.exe %s", c);
	SetEnvironmentVariableA("WINEDLLOVERRIDES", "mscoree,mshtml=;net.exe=b");
	STARTUPINFOA si;
	PROCESS_INFORMATION pi;
	DWORD code = 1;
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi))
		return 1;
	WaitForSingleObject(pi.hProcess, INFINITE);
	GetExitCodeProcess(pi.hProcess, &code);
	CloseHandle(pi.hThread);
	CloseHandle(pi.hProcess);
	return (int)code;
}
