/*
 * Handmade hiredis replies for the unit tests that parse replies without
 * a server; each is freed with freeReplyObject() like hiredis's own.
 */
#ifndef LLMB_TEST_HANDMADE_H
#define LLMB_TEST_HANDMADE_H

#include <stddef.h>

#include <hiredis/hiredis.h>

/* A string, status or error reply (type) holding a copy of s. */
redisReply *str(int type, const char *s);
/* An integer reply. */
redisReply *num(long long v);
/* A nil reply. */
redisReply *nil(void);
/* An array of the n replies given, which it takes. */
redisReply *arr(size_t n, ...);

#endif
