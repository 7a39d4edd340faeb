/* Incremental UTF-8 validation for text messages and close reasons.
 *
 * RFC 6455 §8.1 makes invalid UTF-8 in a text message fail the connection
 * (1007), and §5.6 lets a message arrive in fragments split anywhere, also
 * inside a character.  This file is a small deterministic automaton over
 * byte classes (in the manner of Hoehrmann's decoder, tables written here for
 * validation only): each byte moves the state, and the reject state is
 * reached on the first byte that cannot belong to a valid sequence, so
 * overlongs, surrogates and code points above U+10FFFF fail at their second
 * byte at the latest.  The rules are RFC 3629 §4 (the UTF8-octets grammar).
 *
 * Part of the protocol core: APR only, no httpd header, no I/O, no
 * allocation, no state outside the caller's ws_utf8_t.
 */
#include <string.h>

#include "ws_utf8.h"

/* Byte classes.  Each class groups the bytes the grammar treats alike. */
enum {
    C_ASCII,    /* 00-7F */
    C_CONT_LO,  /* 80-8F */
    C_CONT_MID, /* 90-9F */
    C_CONT_HI,  /* A0-BF */
    C_BAD,      /* C0-C1 (overlong lead), F5-FF (beyond U+10FFFF) */
    C_LEAD2,    /* C2-DF */
    C_E0,       /* E0: next must be A0-BF, else overlong */
    C_LEAD3,    /* E1-EC, EE-EF */
    C_ED,       /* ED: next must be 80-9F, else a surrogate D800-DFFF */
    C_F0,       /* F0: next must be 90-BF, else overlong */
    C_LEAD4,    /* F1-F3 */
    C_F4,       /* F4: next must be 80-8F, else beyond U+10FFFF */
    C_COUNT
};

/* States: what the next byte must be. */
enum {
    S_ACCEPT,   /* between characters */
    S_REJECT,   /* invalid; sticky */
    S_CONT1,    /* one more 80-BF ends the character */
    S_CONT2,    /* two more 80-BF */
    S_CONT3,    /* three more 80-BF */
    S_E0,       /* after E0 */
    S_ED,       /* after ED */
    S_F0,       /* after F0 */
    S_F4,       /* after F4 */
    S_COUNT
};

#define A C_ASCII
#define L C_CONT_LO
#define M C_CONT_MID
#define H C_CONT_HI
#define X C_BAD
#define T C_LEAD2
#define R C_LEAD3

static const unsigned char ws_utf8_class[256] = {
    /* 00-7F */
    A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A, A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,
    A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A, A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,
    A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A, A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,
    A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A, A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,
    /* 80-8F, 90-9F */
    L,L,L,L,L,L,L,L,L,L,L,L,L,L,L,L, M,M,M,M,M,M,M,M,M,M,M,M,M,M,M,M,
    /* A0-BF */
    H,H,H,H,H,H,H,H,H,H,H,H,H,H,H,H, H,H,H,H,H,H,H,H,H,H,H,H,H,H,H,H,
    /* C0-DF */
    X,X,T,T,T,T,T,T,T,T,T,T,T,T,T,T, T,T,T,T,T,T,T,T,T,T,T,T,T,T,T,T,
    /* E0-EF */
    C_E0,R,R,R,R,R,R,R,R,R,R,R,R,C_ED,R,R,
    /* F0-FF */
    C_F0,C_LEAD4,C_LEAD4,C_LEAD4,C_F4,X,X,X,X,X,X,X,X,X,X,X
};

#undef A
#undef L
#undef M
#undef H
#undef X
#undef T
#undef R

#define J S_REJECT

static const unsigned char ws_utf8_next[S_COUNT][C_COUNT] = {
    /*            ASCII     80-8F    90-9F    A0-BF    bad lead2    E0    lead3    ED    F0    lead4    F4 */
    /* ACCEPT */ {S_ACCEPT, J,       J,       J,       J, S_CONT1, S_E0, S_CONT2, S_ED, S_F0, S_CONT3, S_F4},
    /* REJECT */ {J,        J,       J,       J,       J, J,       J,    J,       J,    J,    J,       J},
    /* CONT1  */ {J,        S_ACCEPT,S_ACCEPT,S_ACCEPT,J, J,       J,    J,       J,    J,    J,       J},
    /* CONT2  */ {J,        S_CONT1, S_CONT1, S_CONT1, J, J,       J,    J,       J,    J,    J,       J},
    /* CONT3  */ {J,        S_CONT2, S_CONT2, S_CONT2, J, J,       J,    J,       J,    J,    J,       J},
    /* E0     */ {J,        J,       J,       S_CONT1, J, J,       J,    J,       J,    J,    J,       J},
    /* ED     */ {J,        S_CONT1, S_CONT1, J,       J, J,       J,    J,       J,    J,    J,       J},
    /* F0     */ {J,        J,       S_CONT2, S_CONT2, J, J,       J,    J,       J,    J,    J,       J},
    /* F4     */ {J,        S_CONT2, J,       J,       J, J,       J,    J,       J,    J,    J,       J},
};

#undef J

#define WS_UTF8_HIGH_BITS APR_UINT64_C(0x8080808080808080)

void ws_utf8_init(ws_utf8_t *v)
{
    v->state = S_ACCEPT;
}

int ws_utf8_feed(ws_utf8_t *v, const unsigned char *p, apr_size_t n)
{
    apr_uint32_t st = v->state;
    const unsigned char *end = p + n;

    while (p < end) {
        if (st == S_ACCEPT) {
            /* Text is mostly ASCII: skip it eight bytes at a time.  memcpy
             * because p has no alignment guarantee. */
            while (end - p >= 8) {
                apr_uint64_t w;
                memcpy(&w, p, 8);
                if (w & WS_UTF8_HIGH_BITS) {
                    break;
                }
                p += 8;
            }
            if (p == end) {
                break;
            }
        }
        st = ws_utf8_next[st][ws_utf8_class[*p++]];
        if (st == S_REJECT) {
            break;
        }
    }
    v->state = st;
    return st != S_REJECT;
}

int ws_utf8_complete(const ws_utf8_t *v)
{
    return v->state == S_ACCEPT;
}

int ws_utf8_valid(const unsigned char *p, apr_size_t n)
{
    ws_utf8_t v;

    ws_utf8_init(&v);
    return ws_utf8_feed(&v, p, n) && ws_utf8_complete(&v);
}
