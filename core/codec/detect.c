/*
 * detect.c -- a connection's protocol by its first bytes (detect.h). A
 * TLS record starts with its content type, 0x16 for a handshake, and the
 * major version 3 (every TLS, and SSL 3); an HTTP/1 request with a
 * method and a space, of the methods RFC 9110 registers, and PATCH (RFC
 * 5789), and the HTTP/2 preface's PRI. A plain client's text rarely
 * starts with a method in capitals and its space; one that does is
 * answered as HTTP would answer it.
 */
#include <string.h>

#include "codec/detect.h"

morphd_detect_t morphd_detect(const unsigned char *p, size_t n, bool tls,
                              bool http)
{
    if (tls && p[0] == 0x16)
        return n < 2 ? MORPHD_DETECT_WAIT
               : p[1] == 0x03 ? MORPHD_DETECT_TLS
                              : MORPHD_DETECT_PLAIN;
    if (http) {
        static const char *const methods[] = {
            "GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ",
            "CONNECT ", "TRACE ", "PRI ",
        };
        bool prefix = false;
        for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
            size_t len = strlen(methods[i]);
            if (memcmp(p, methods[i], n < len ? n : len) == 0) {
                if (n >= len)
                    return MORPHD_DETECT_HTTP;
                prefix = true;
            }
        }
        if (prefix)
            return MORPHD_DETECT_WAIT;
    }
    return MORPHD_DETECT_PLAIN;
}
