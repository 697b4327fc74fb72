/* cmocka needs these before its own header. */
#ifndef VIREO_TESTS_CMOCKA_PRELUDE_H
#define VIREO_TESTS_CMOCKA_PRELUDE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
