/* A stand-in for net.exe under Wine (tests/windows/test_setup.sh): Wine's net knows only
 * start, stop, use and help, not localgroup. This one appends its command line to C:\net.log;
 * 'net localgroup ...' ends there (exit 0); 'net start NAME' and 'net stop NAME' do what
 * Wine's net does, through the service manager, and wait until the service has started or
 * stopped (exit 2 when it cannot). It starts no other net.exe: that would be itself. */
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <windows.h>

static int service(const char *name, bool start)
{
	SC_HANDLE scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT), svc = NULL;
	SERVICE_STATUS st;
	int r = 2;
	if (scm == NULL || (svc = OpenServiceA(scm, name, SERVICE_START | SERVICE_STOP | SERVICE_QUERY_STATUS)) == NULL)
		goto out;
	if (start ? !StartServiceA(svc, 0, NULL) : !ControlService(svc, SERVICE_CONTROL_STOP, &st))
		goto out;
	DWORD want = start ? SERVICE_RUNNING : SERVICE_STOPPED;
	for (int i = 0; i < 600; i++) { /* 60 s */
		if (!QueryServiceStatus(svc, &st))
			goto out;
		if (st.dwCurrentState == want) {
			r = 0;
			goto out;
		}
		Sleep(100);
	}
out:
	if (svc != NULL)
		CloseServiceHandle(svc);
	if (scm != NULL)
		CloseServiceHandle(scm);
	return r;
}

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
	if (_strnicmp(c, "localgroup ", 11) == 0)
		return 0;
	if (_strnicmp(c, "start ", 6) == 0)
		return service(c + 6, true);
	if (_strnicmp(c, "stop ", 5) == 0)
		return service(c + 5, false);
	return 1;
}
