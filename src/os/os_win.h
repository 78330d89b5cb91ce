/* What the C library of mingw-w64 (msvcrt) lacks of what zila's C uses, given by os_win.c.
 * The Windows build (tools/windows/windows.mk) includes it into every file (-include), so the
 * rest of the tree stays free of #ifdefs; the Linux build never sees it. */
#ifndef ZILA_OS_WIN_H
#define ZILA_OS_WIN_H

#include <stdio.h>
#include <string.h>
#include <sys/types.h>

/* zila's formats are C99's (%zu, %lld): mingw's own printf family (__USE_MINGW_ANSI_STDIO),
 * not msvcrt's, checks and prints them. */
#define ZILA_PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))

char *strndup(const char *s, size_t n);
ssize_t getline(char **line, size_t *cap, FILE *f);

#endif
