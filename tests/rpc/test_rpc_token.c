// SPDX-License-Identifier: MIT
/*
 * test_rpc_token.c - the bearer-token check and token files.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rpc/token.h"

#define V(s) s, strlen(s)

static void test_check(void **state)
{
	(void)state;
	assert_true(rpc_token_check("s3cret", V("Bearer s3cret")));
	assert_true(rpc_token_check("s3cret", V("bearer   s3cret")));
	assert_false(rpc_token_check("s3cret", V("Bearer s3cre")));
	assert_false(rpc_token_check("s3cret", V("Bearer s3cretX")));
	assert_false(rpc_token_check("s3cret", V("Bearer ")));
	assert_false(rpc_token_check("s3cret", V("Basic s3cret")));
	assert_false(rpc_token_check("s3cret", V("Bearers3cret")));
	assert_false(rpc_token_check("s3cret", V("s3cret")));
	assert_false(rpc_token_check("s3cret", NULL, 0));
	assert_false(rpc_token_check(NULL, V("Bearer s3cret")));
	/* Not NUL-terminated: only valuelen bytes count. */
	assert_true(rpc_token_check("ab", "Bearer abXYZ", 9));
}

static void test_valid_header(void **state)
{
	char h[32], big[RPC_TOKEN_MAX + 2];

	(void)state;
	assert_true(rpc_token_valid("a"));
	assert_false(rpc_token_valid(""));
	assert_false(rpc_token_valid("a b"));
	assert_false(rpc_token_valid("tab\t"));
	memset(big, 'x', sizeof(big));
	big[RPC_TOKEN_MAX] = '\0';
	assert_true(rpc_token_valid(big));
	big[RPC_TOKEN_MAX] = 'x';
	big[RPC_TOKEN_MAX + 1] = '\0';
	assert_false(rpc_token_valid(big));
	assert_int_equal(rpc_token_header("tok", h, sizeof(h)), 10);
	assert_string_equal(h, "Bearer tok");
	assert_int_equal(rpc_token_header("tok", h, 10), -ENOSPC);
}

/* What rpc_token_load(path) writes on stderr. */
static const char *load_stderr(const char *path)
{
	static char out[512];
	char tok[64], err[256];
	int save = dup(2), fd = memfd_create("stderr", 0);
	ssize_t n;

	assert_true(save >= 0 && fd >= 0);
	fflush(stderr);
	dup2(fd, 2);
	rpc_token_load(path, tok, sizeof(tok), err, sizeof(err));
	fflush(stderr);
	dup2(save, 2);
	close(save);
	n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	return out;
}

static void test_load(void **state)
{
	char path[] = "/tmp/fpt-rpc-tokenXXXXXX";
	char tok[64], err[256];
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("  abc123-XYZ \r\nsecond line ignored\n", f);
	fclose(f);
	assert_int_equal(rpc_token_load(path, tok, sizeof(tok), err, sizeof(err)), 0);
	assert_string_equal(tok, "abc123-XYZ");
	assert_int_equal(rpc_token_load(path, tok, 5, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "too long"));
	f = fopen(path, "w");
	fputs("two words\n", f);
	fclose(f);
	assert_int_equal(rpc_token_load(path, tok, sizeof(tok), err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, path));
	assert_int_equal(chmod(path, 0640), 0);
	assert_non_null(strstr(load_stderr(path), "open to group or others (mode 0640)"));
	assert_int_equal(chmod(path, 0604), 0);
	assert_non_null(strstr(load_stderr(path), "chmod 600"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_string_equal(load_stderr(path), "");
	assert_int_equal(chmod(path, 0400), 0);
	assert_string_equal(load_stderr(path), "");
	unlink(path);
	assert_int_equal(rpc_token_load(path, tok, sizeof(tok), err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_valid_header),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
