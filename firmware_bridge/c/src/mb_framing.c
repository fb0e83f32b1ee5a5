/* Serial framing (docs/protocol.md "Serial framing"): CRC-16/CCITT-FALSE, COBS, and an
 * incremental frame decoder that resynchronises at the next 0x00. */
#include <string.h>

#include "mb_protocol.h"

uint16_t mb_crc16(const uint8_t *data, size_t len) {
    uint16_t crc = 0xFFFFu;
    size_t i;
    int b;
    for (i = 0; i < len; i++) {
        crc = (uint16_t)(crc ^ (uint16_t)(data[i] << 8));
        for (b = 0; b < 8; b++)
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
    return crc;
}

size_t mb_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
    size_t code_at = 0, o = 1, i;
    uint8_t code = 1;
    if (cap < 1) return 0;
    for (i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code = 1;
            code_at = o++;
            if (o > cap) return 0;
        } else {
            if (o >= cap) return 0;
            out[o++] = in[i];
            code++;
            if (code == 0xFF) {
                out[code_at] = code;
                code = 1;
                code_at = o++;
                if (o > cap) return 0;
            }
        }
    }
    out[code_at] = code;
    return o;
}

int mb_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
    size_t i = 0, o = 0;
    while (i < len) {
        uint8_t code = in[i++];
        uint8_t k;
        if (code == 0) return -1;
        for (k = 1; k < code; k++) {
            if (i >= len || in[i] == 0 || o >= cap) return -1;
            out[o++] = in[i++];
        }
        if (code != 0xFF && i < len) {
            if (o >= cap) return -1;
            out[o++] = 0;
        }
    }
    return (int)o;
}

size_t mb_frame_encode(const uint8_t *msg, size_t len, uint8_t *out, size_t cap) {
    uint8_t body[MB_MAX_MESSAGE_LEN + MB_CRC_LEN];
    uint16_t crc;
    size_t n;
    if (len > MB_MAX_MESSAGE_LEN) return 0;
    memcpy(body, msg, len);
    crc = mb_crc16(msg, len);
    body[len] = (uint8_t)(crc & 0xFFu);
    body[len + 1] = (uint8_t)(crc >> 8);
    if (cap < 1) return 0;
    n = mb_cobs_encode(body, len + MB_CRC_LEN, out, cap - 1);
    if (n == 0) return 0;
    out[n] = 0;
    return n + 1;
}

void mb_frame_decoder_init(mb_frame_decoder_t *d) { memset(d, 0, sizeof *d); }

static void end_frame(mb_frame_decoder_t *d, mb_frame_sink_t sink, void *ctx) {
    uint8_t body[MB_MAX_ENCODED_LEN];
    int n;
    uint16_t crc;
    n = mb_cobs_decode(d->buf, d->len, body, sizeof body);
    if (n < 0 || n < (int)(MB_CRC_LEN + 1) || n > (int)(MB_MAX_MESSAGE_LEN + MB_CRC_LEN)) {
        d->stats.bad_frames++;
        d->stats.dropped_bytes += (uint32_t)d->len + 1u;
        return;
    }
    crc = (uint16_t)(body[n - 2] | (uint16_t)(body[n - 1] << 8));
    if (mb_crc16(body, (size_t)n - MB_CRC_LEN) != crc) {
        d->stats.crc_errors++;
        d->stats.dropped_bytes += (uint32_t)d->len + 1u;
        return;
    }
    d->stats.frames++;
    if (sink != NULL) sink(ctx, body, (size_t)n - MB_CRC_LEN);
}

void mb_frame_feed(mb_frame_decoder_t *d, const uint8_t *data, size_t len, mb_frame_sink_t sink,
                   void *ctx) {
    size_t i;
    for (i = 0; i < len; i++) {
        uint8_t b = data[i];
        if (b == 0) {
            if (d->overflow) {
                d->overflow = false;
            } else if (d->len > 0) {
                end_frame(d, sink, ctx);
            }
            d->len = 0;
        } else if (d->overflow) {
            d->stats.dropped_bytes++;
        } else if (d->len >= MB_MAX_ENCODED_LEN) {
            /* no delimiter where one must have been: drop until the next 0x00 */
            d->stats.dropped_bytes += (uint32_t)d->len + 1u;
            d->stats.bad_frames++;
            d->len = 0;
            d->overflow = true;
        } else {
            d->buf[d->len++] = b;
        }
    }
}
