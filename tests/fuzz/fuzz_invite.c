/* libFuzzer harness for the invite-code parser and the other typed-in identifiers: invite
 * codes, device ids and base32, with the input as text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zila/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 512)
		return 0;
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct zila_invite inv;
	if (zila_invite_parse(s, &inv) == 0) {
		/* A parsed code formats to a code that parses to the same invite. */
		char code[ZILA_INVITE_CODE_LEN + 1];
		struct zila_invite again;
		zila_invite_format(&inv, code);
		if (zila_invite_parse(code, &again) != 0 || memcmp(&inv, &again, sizeof(inv)) != 0)
			abort();
	}
	static const uint8_t pk[32] = { 9 };
	(void)zila_device_id_match(s, pk);
	uint8_t out[64];
	(void)zila_base32_decode(out, size % 64, s);
	free(s);
	return 0;
}
