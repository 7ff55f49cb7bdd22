/*
 * codec.c -- the built-in codecs by name, a codec's settings checked and
 * turned into the shape of its replies, and the values of length_field
 * and delimiter.
 */
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"

static const morphd_codec_ops_t *const builtins[] = {
    &morphd_codec_stream, &morphd_codec_line, &morphd_codec_length,
    &morphd_codec_netstring, &morphd_codec_delimiter,
};

const char morphd_codec_builtin_names[] =
    "stream, line, length, netstring, delimiter";

const morphd_codec_ops_t *morphd_codec_builtin(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
        if (strcmp(builtins[i]->name, name) == 0)
            return builtins[i];
    return NULL;
}

static const char *const kind_names[] = {
    [MORPHD_LEN_U8] = "u8",       [MORPHD_LEN_U16BE] = "u16be",
    [MORPHD_LEN_U16LE] = "u16le", [MORPHD_LEN_U24BE] = "u24be",
    [MORPHD_LEN_U32BE] = "u32be", [MORPHD_LEN_U32LE] = "u32le",
    [MORPHD_LEN_U64BE] = "u64be", [MORPHD_LEN_U64LE] = "u64le",
    [MORPHD_LEN_VARINT] = "varint",
};

const char morphd_length_kind_names[] =
    "u8, u16be, u16le, u24be, u32be, u32le, u64be, u64le, varint";

int morphd_length_kind_parse(const char *name, morphd_length_kind_t *kind)
{
    for (size_t i = 0; i < sizeof kind_names / sizeof *kind_names; i++)
        if (kind_names[i] != NULL && strcmp(kind_names[i], name) == 0) {
            *kind = (morphd_length_kind_t)i;
            return 0;
        }
    return -1;
}

const char *morphd_length_kind_name(morphd_length_kind_t kind)
{
    if (kind == MORPHD_LEN_DECIMAL)
        return "decimal";
    if ((size_t)kind < sizeof kind_names / sizeof *kind_names &&
        kind_names[kind] != NULL)
        return kind_names[kind];
    return "none";
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int morphd_delimiter_parse(const char *text, unsigned char *out, size_t size,
                           char *err, size_t err_size)
{
    size_t n = 0;
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char b = (unsigned char)*p;
        if (*p == '\\') {
            p++;
            switch (*p) {
            case '0': b = 0; break;
            case 't': b = '\t'; break;
            case 'r': b = '\r'; break;
            case 'n': b = '\n'; break;
            case '\\': b = '\\'; break;
            case 'x': {
                int hi = hex_digit(p[1]), lo = hi < 0 ? -1 : hex_digit(p[2]);
                if (lo < 0) {
                    snprintf(err, err_size, "'\\x' takes two hex digits, as "
                             "in \\x1e");
                    return -1;
                }
                b = (unsigned char)(hi << 4 | lo);
                p += 2;
                break;
            }
            case '\0':
                snprintf(err, err_size, "a '\\' at the end (write \\\\ for "
                         "a backslash)");
                return -1;
            default:
                snprintf(err, err_size, "'\\%c' is not an escape (\\0 \\t "
                         "\\r \\n \\\\ \\xHH)", *p);
                return -1;
            }
        }
        if (n == size) {
            snprintf(err, err_size, "longer than %zu bytes", size);
            return -1;
        }
        out[n++] = b;
    }
    if (n == 0) {
        snprintf(err, err_size, "needs at least one byte");
        return -1;
    }
    return (int)n;
}

morphd_decode_status_t morphd_decode_last(const morphd_codec_t *c,
                                          const unsigned char *data,
                                          size_t len, morphd_decoded_t *d)
{
    d->msg = data;
    d->len = len;
    d->used = len;
    d->frame = (morphd_frame_t){&c->shape_eof, NULL, 0, 0, NULL};
    return MORPHD_DECODE_MESSAGE;
}

static size_t decimal_digits(size_t n)
{
    size_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

static void set_tail(morphd_frame_shape_t *s, const void *tail, size_t n)
{
    memcpy(s->tail, tail, n);
    s->tail_len = (uint8_t)n;
}

int morphd_codec_init(morphd_codec_t *c, const morphd_codec_ops_t *ops,
                      size_t max_message, morphd_length_kind_t length_field,
                      size_t length_offset, int64_t length_adjust,
                      const unsigned char *delimiter, size_t delimiter_len,
                      char *err, size_t err_size)
{
    memset(c, 0, sizeof *c);
    c->ops = ops;
    c->max_message = max_message;
    c->max_frame = max_message;
    if (ops == &morphd_codec_stream) {
        c->chunks = true;
    } else if (ops == &morphd_codec_line) {
        set_tail(&c->shape, "\n", 1);
        set_tail(&c->shape_crlf, "\r\n", 2);
        c->max_frame = max_message + 2;
    } else if (ops == &morphd_codec_length) {
        if (length_offset > MORPHD_FRAME_HEAD_MAX) {
            snprintf(err, err_size, "length_offset is at most %d bytes",
                     MORPHD_FRAME_HEAD_MAX);
            return -1;
        }
        if (length_field == MORPHD_LEN_NONE || length_field == MORPHD_LEN_DECIMAL) {
            snprintf(err, err_size, "length_field is one of %s",
                     morphd_length_kind_names);
            return -1;
        }
        c->length_field = length_field;
        c->length_size = morphd_length_kind_size(length_field);
        c->length_offset = length_offset;
        c->length_adjust = length_adjust;
        c->shape.length = length_field;
        c->shape.field_size = (uint8_t)morphd_length_kind_size(length_field);
        c->shape.field_max = c->shape.field_size == 0 || c->shape.field_size == 8
                                 ? UINT64_MAX
                                 : ((uint64_t)1 << (8 * c->shape.field_size)) - 1;
        c->shape.adjust = length_adjust;
        size_t field = morphd_length_kind_size(length_field);
        c->max_frame = length_offset + (field ? field : 10) + max_message;
    } else if (ops == &morphd_codec_netstring) {
        c->shape.length = MORPHD_LEN_DECIMAL;
        c->shape.field_max = UINT64_MAX;
        set_tail(&c->shape, ",", 1);
        c->max_frame = decimal_digits(max_message) + 2 + max_message;
    } else if (ops == &morphd_codec_plugin) {
        c->answers = true;
        c->shape.length = MORPHD_LEN_PLUGIN;
        c->max_frame = 2 * max_message + 4096;
    } else if (ops == &morphd_codec_delimiter) {
        if (delimiter_len == 0 || delimiter_len > MORPHD_FRAME_TAIL_MAX) {
            snprintf(err, err_size, "a delimiter is 1 to %d bytes",
                     MORPHD_FRAME_TAIL_MAX);
            return -1;
        }
        set_tail(&c->shape, delimiter, delimiter_len);
        c->max_frame = max_message + delimiter_len;
    }
    return 0;
}
