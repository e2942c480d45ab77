/* Tiny assertion helpers shared by the C test programs. */
#ifndef DASKR_TEST_CHECK_H
#define DASKR_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daskr.h"

static int check_failures = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                         \
        }                                                                             \
    } while (0)

#define CHECK_STR(a, b)                                                                      \
    do {                                                                                     \
        const char *check_a_ = (a), *check_b_ = (b);                                         \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                     \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s (\"%s\") != \"%s\"\n", __FILE__, \
                    __LINE__, #a, check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); \
            check_failures++;                                                                \
        }                                                                                    \
    } while (0)

/* Asserts a call succeeded; on failure prints the error and counts it. */
#define CHECK_OK(call)                                                                        \
    do {                                                                                      \
        daskr_error_t *check_e_ = (call);                                                     \
        if (check_e_) {                                                                       \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,         \
                    daskr_error_kind_name(daskr_error_kind(check_e_)), daskr_error_message(check_e_)); \
            daskr_error_free(check_e_);                                                       \
            check_failures++;                                                                 \
        }                                                                                     \
    } while (0)

/* Asserts a call failed with `kind` (and, if `key` is not NULL, named `key`). */
#define CHECK_ERR(call, kind, key)                                                           \
    do {                                                                                     \
        daskr_error_t *check_e_ = (call);                                                    \
        if (!check_e_) {                                                                     \
            fprintf(stderr, "%s:%d: %s succeeded, expected %s\n", __FILE__, __LINE__, #call, #kind); \
            check_failures++;                                                                \
        } else {                                                                             \
            CHECK(daskr_error_kind(check_e_) == (kind));                                     \
            if ((key) != NULL) CHECK_STR(daskr_error_key(check_e_), (const char *)(key));    \
            CHECK(daskr_error_message(check_e_) != NULL);                                   \
            daskr_error_free(check_e_);                                                      \
        }                                                                                    \
    } while (0)

static int check_report(const char *name) {
    if (check_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
