/* Message codec of protocol version 2 (docs/protocol.md): header + fixed payloads. */
#include <string.h>

#include "mb_protocol.h"

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (uint16_t)(p[1] << 8)); }

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* two's complement without implementation-defined conversions */
static int32_t as_i32(uint32_t v) {
    return v <= 0x7FFFFFFFu ? (int32_t)v : -(int32_t)(0xFFFFFFFFu - v) - 1;
}

int mb_payload_len(uint8_t type) {
    switch (type) {
    case MB_HELLO: return 1;
    case MB_SET_STREAM: return 3;
    case MB_VIBRATE: return 9;
    case MB_STOP: return 0;
    case MB_KEEPALIVE: return 0;
    case MB_SET_LIMIT: return 4;
    case MB_TARE: return 0;
    case MB_PATTERN_DEFINE: return 3;
    case MB_PLAY_PATTERN: return 7;
    case MB_DEVICE_INFO: return 62;
    case MB_FORCE_BATCH: return 7;
    case MB_STATUS: return 4;
    case MB_ACK: return 3;
    case MB_NACK: return 4;
    case MB_TARE_RESULT: return 6;
    default: return -1;
    }
}

size_t mb_encode(const mb_msg_t *m, uint8_t *buf, size_t cap) {
    int fixed = mb_payload_len(m->type);
    size_t len;
    uint8_t *p = buf + MB_HEADER_LEN;
    uint32_t bits;
    unsigned i;
    if (fixed < 0) return 0;
    len = MB_HEADER_LEN + (size_t)fixed;
    if (m->type == MB_FORCE_BATCH) {
        if (m->u.force_batch.count > MB_MAX_SAMPLES_PER_BATCH) return 0;
        len += 4u * m->u.force_batch.count;
    }
    if (m->type == MB_PATTERN_DEFINE) {
        if (m->u.pattern_define.count > MB_MAX_PATTERN_STEPS) return 0;
        len += 4u * m->u.pattern_define.count;
    }
    if (len > cap || len > MB_MAX_MESSAGE_LEN) return 0;
    buf[0] = MB_PROTOCOL_VERSION;
    buf[1] = m->type;
    put16(buf + 2, m->seq);
    switch (m->type) {
    case MB_HELLO: p[0] = m->u.hello.protocol_version; break;
    case MB_SET_STREAM:
        put16(p, m->u.set_stream.rate_hz);
        p[2] = m->u.set_stream.samples_per_batch;
        break;
    case MB_VIBRATE:
        put16(p, m->u.vibrate.intensity_permille);
        put16(p + 2, m->u.vibrate.frequency_hz);
        p[4] = m->u.vibrate.waveform;
        put32(p + 5, m->u.vibrate.duration_ms);
        break;
    case MB_SET_LIMIT: put32(p, m->u.set_limit.limit_mn); break;
    case MB_PATTERN_DEFINE:
        p[0] = m->u.pattern_define.pattern_id;
        p[1] = m->u.pattern_define.loop_from;
        p[2] = m->u.pattern_define.count;
        for (i = 0; i < m->u.pattern_define.count; i++) {
            put16(p + 3 + 4 * i, m->u.pattern_define.steps[i].level_permille);
            put16(p + 5 + 4 * i, m->u.pattern_define.steps[i].duration_ms);
        }
        break;
    case MB_PLAY_PATTERN:
        p[0] = m->u.play_pattern.pattern_id;
        put16(p + 1, m->u.play_pattern.intensity_permille);
        put16(p + 3, m->u.play_pattern.cap_permille);
        put16(p + 5, m->u.play_pattern.frequency_hz);
        break;
    case MB_DEVICE_INFO: {
        const mb_device_info_t *d = &m->u.device_info;
        memcpy(p, d->model, 16);
        memcpy(p + 16, d->firmware, 8);
        memcpy(p + 24, d->serial_number, 16);
        p[40] = d->protocol_version;
        put16(p + 41, d->rate_min_hz);
        put16(p + 43, d->rate_max_hz);
        p[45] = d->motor_kind;
        put16(p + 46, d->motor_freq_min_hz);
        put16(p + 48, d->motor_freq_max_hz);
        memcpy(&bits, &d->cal_scale_counts_per_n, 4);
        put32(p + 50, bits);
        put32(p + 54, (uint32_t)d->cal_offset_counts);
        put32(p + 58, d->limit_max_mn);
        break;
    }
    case MB_FORCE_BATCH:
        put32(p, m->u.force_batch.t_us);
        put16(p + 4, m->u.force_batch.rate_hz);
        p[6] = m->u.force_batch.count;
        for (i = 0; i < m->u.force_batch.count; i++)
            put32(p + 7 + 4 * i, (uint32_t)m->u.force_batch.samples[i]);
        break;
    case MB_STATUS:
        p[0] = m->u.status.battery_pct;
        put16(p + 1, m->u.status.motor_permille);
        p[3] = m->u.status.flags;
        break;
    case MB_ACK:
        put16(p, m->u.ack.cmd_seq);
        p[2] = m->u.ack.cmd_type;
        break;
    case MB_NACK:
        put16(p, m->u.nack.cmd_seq);
        p[2] = m->u.nack.cmd_type;
        p[3] = m->u.nack.code;
        break;
    case MB_TARE_RESULT:
        put16(p, m->u.tare_result.cmd_seq);
        put32(p + 2, (uint32_t)m->u.tare_result.offset_counts);
        break;
    default: break; /* Stop, Keepalive, Tare: no payload */
    }
    return len;
}

int mb_decode(const uint8_t *buf, size_t len, mb_msg_t *out) {
    const uint8_t *p = buf + MB_HEADER_LEN;
    size_t n;
    int fixed;
    uint32_t bits;
    unsigned i;
    if (len < MB_HEADER_LEN) return MB_DECODE_NO_HEADER;
    if (buf[0] != MB_PROTOCOL_VERSION) return MB_NACK_BAD_VERSION;
    fixed = mb_payload_len(buf[1]);
    if (fixed < 0) return MB_NACK_UNKNOWN_TYPE;
    if (len > MB_MAX_MESSAGE_LEN) return MB_NACK_BAD_LENGTH;
    n = len - MB_HEADER_LEN;
    if (buf[1] == MB_FORCE_BATCH) {
        if (n < 7u || n != 7u + 4u * (size_t)p[6]) return MB_NACK_BAD_LENGTH;
    } else if (buf[1] == MB_PATTERN_DEFINE) {
        if (n < 3u || n != 3u + 4u * (size_t)p[2]) return MB_NACK_BAD_LENGTH;
    } else if (n != (size_t)fixed) {
        return MB_NACK_BAD_LENGTH;
    }
    memset(out, 0, sizeof *out);
    out->type = buf[1];
    out->seq = get16(buf + 2);
    switch (out->type) {
    case MB_HELLO: out->u.hello.protocol_version = p[0]; break;
    case MB_SET_STREAM:
        out->u.set_stream.rate_hz = get16(p);
        out->u.set_stream.samples_per_batch = p[2];
        break;
    case MB_VIBRATE:
        out->u.vibrate.intensity_permille = get16(p);
        out->u.vibrate.frequency_hz = get16(p + 2);
        out->u.vibrate.waveform = p[4];
        out->u.vibrate.duration_ms = get32(p + 5);
        break;
    case MB_SET_LIMIT: out->u.set_limit.limit_mn = get32(p); break;
    case MB_PATTERN_DEFINE:
        /* count <= 59 follows from len <= 244 */
        out->u.pattern_define.pattern_id = p[0];
        out->u.pattern_define.loop_from = p[1];
        out->u.pattern_define.count = p[2];
        for (i = 0; i < p[2]; i++) {
            out->u.pattern_define.steps[i].level_permille = get16(p + 3 + 4 * i);
            out->u.pattern_define.steps[i].duration_ms = get16(p + 5 + 4 * i);
        }
        break;
    case MB_PLAY_PATTERN:
        out->u.play_pattern.pattern_id = p[0];
        out->u.play_pattern.intensity_permille = get16(p + 1);
        out->u.play_pattern.cap_permille = get16(p + 3);
        out->u.play_pattern.frequency_hz = get16(p + 5);
        break;
    case MB_DEVICE_INFO: {
        mb_device_info_t *d = &out->u.device_info;
        memcpy(d->model, p, 16);
        memcpy(d->firmware, p + 16, 8);
        memcpy(d->serial_number, p + 24, 16);
        d->protocol_version = p[40];
        d->rate_min_hz = get16(p + 41);
        d->rate_max_hz = get16(p + 43);
        d->motor_kind = p[45];
        d->motor_freq_min_hz = get16(p + 46);
        d->motor_freq_max_hz = get16(p + 48);
        bits = get32(p + 50);
        memcpy(&d->cal_scale_counts_per_n, &bits, 4);
        d->cal_offset_counts = as_i32(get32(p + 54));
        d->limit_max_mn = get32(p + 58);
        break;
    }
    case MB_FORCE_BATCH:
        /* count <= 58 follows from len <= 244 */
        out->u.force_batch.t_us = get32(p);
        out->u.force_batch.rate_hz = get16(p + 4);
        out->u.force_batch.count = p[6];
        for (i = 0; i < p[6]; i++) out->u.force_batch.samples[i] = as_i32(get32(p + 7 + 4 * i));
        break;
    case MB_STATUS:
        out->u.status.battery_pct = p[0];
        out->u.status.motor_permille = get16(p + 1);
        out->u.status.flags = p[3];
        break;
    case MB_ACK:
        out->u.ack.cmd_seq = get16(p);
        out->u.ack.cmd_type = p[2];
        break;
    case MB_NACK:
        out->u.nack.cmd_seq = get16(p);
        out->u.nack.cmd_type = p[2];
        out->u.nack.code = p[3];
        break;
    case MB_TARE_RESULT:
        out->u.tare_result.cmd_seq = get16(p);
        out->u.tare_result.offset_counts = as_i32(get32(p + 2));
        break;
    default: break;
    }
    return MB_DECODE_OK;
}
