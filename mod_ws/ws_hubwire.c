/* ws_hubwire.c: hub frames and buffers (see ws_hubwire.h).  APR only. */
#include "ws_hubwire.h"

#include <stdlib.h>
#include <string.h>

int ws_hubbuf_reserve(ws_hubbuf_t *b, apr_size_t more)
{
    apr_size_t n;
    char *p;

    if (b->off == b->len) {
        b->off = b->len = 0;
    }
    if (b->len + more <= b->cap) {
        return 0;
    }
    if (b->off) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more <= b->cap) {
            return 0;
        }
    }
    for (n = b->cap ? b->cap : 4096; n < b->len + more; n *= 2) {
    }
    p = realloc(b->p, n);
    if (!p) {
        return -1;
    }
    b->p = p;
    b->cap = n;
    return 0;
}

void ws_hubbuf_free(ws_hubbuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static void put32(unsigned char *p, apr_uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static apr_uint32_t get32(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 24) | ((apr_uint32_t)p[1] << 16)
           | ((apr_uint32_t)p[2] << 8) | p[3];
}

int ws_hubframe_append(ws_hubbuf_t *b, const ws_hubframe_t *f,
                       apr_size_t max)
{
    apr_size_t flen = WS_HUBWIRE_HEADER + f->channel_len + f->len;
    unsigned char *h;

    if (f->channel_len > 0xffff || flen - 4 > 0xffffffffu
        || b->len - b->off + flen > max || ws_hubbuf_reserve(b, flen)) {
        return -1;
    }
    h = (unsigned char *)b->p + b->len;
    put32(h, (apr_uint32_t)(flen - 4));
    h[4] = WS_HUBWIRE_PUBLISH;
    h[5] = (unsigned char)f->type;
    h[6] = (unsigned char)f->flags;
    h[7] = 0;
    put32(h + 8, f->exclude);
    put32(h + 12, (apr_uint32_t)(f->seq >> 32));
    put32(h + 16, (apr_uint32_t)f->seq);
    h[20] = (unsigned char)(f->channel_len >> 8);
    h[21] = (unsigned char)f->channel_len;
    memcpy(h + WS_HUBWIRE_HEADER, f->channel, f->channel_len);
    if (f->len) {
        memcpy(h + WS_HUBWIRE_HEADER + f->channel_len, f->data, f->len);
    }
    b->len += flen;
    return 0;
}

apr_ssize_t ws_hubframe_parse(const char *p, apr_size_t avail,
                              apr_size_t max, ws_hubframe_t *f)
{
    const unsigned char *u = (const unsigned char *)p;
    apr_size_t flen;

    if (avail < 5) {
        return 0;
    }
    flen = 4 + (apr_size_t)get32(u);
    if (flen < WS_HUBWIRE_HEADER || flen > max
        || u[4] != WS_HUBWIRE_PUBLISH) {
        return -1;
    }
    if (avail < flen) {
        return 0;
    }
    if (u[7] != 0) {
        return -1;               /* reserved: 0 in this version */
    }
    f->type = u[5];
    f->flags = u[6];
    f->exclude = get32(u + 8);
    f->seq = ((apr_uint64_t)get32(u + 12) << 32) | get32(u + 16);
    f->channel_len = ((apr_size_t)u[20] << 8) | u[21];
    if (WS_HUBWIRE_HEADER + f->channel_len > flen) {
        return -1;
    }
    f->channel = p + WS_HUBWIRE_HEADER;
    f->data = f->channel + f->channel_len;
    f->len = flen - WS_HUBWIRE_HEADER - f->channel_len;
    return (apr_ssize_t)flen;
}

void ws_hubframe_set_flags(char *frame, unsigned flags)
{
    frame[6] = (char)flags;
}
