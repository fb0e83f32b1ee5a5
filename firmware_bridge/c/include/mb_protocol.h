/* massagectl wire protocol, version 2 (docs/protocol.md): messages, codec, serial framing.
 * Portable C99, no heap, freestanding headers and <string.h> only. All integers on the wire
 * are little-endian; the codec reads and writes them byte by byte (any host byte order).
 * The f32 of DeviceInfo is copied as its IEEE 754 bits (every supported target uses them). */
#ifndef MB_PROTOCOL_H
#define MB_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MB_PROTOCOL_VERSION 2u
/* Version 3 (DeviceInfo only; frames and Hello keep 2): PatternDefine and PlayPattern. */
#define MB_PATTERNS_VERSION 3u
#define MB_MAX_PATTERNS 8u
/* (244 - 4 - 3) / 4 */
#define MB_MAX_PATTERN_STEPS 59u
#define MB_HEADER_LEN 4u
#define MB_MAX_MESSAGE_LEN 244u
/* (244 - 4 - 7) / 4 */
#define MB_MAX_SAMPLES_PER_BATCH 58u
#define MB_CRC_LEN 2u
/* COBS of the longest message and its CRC, delimiter excluded */
#define MB_MAX_ENCODED_LEN 247u
/* one whole frame with its delimiter */
#define MB_MAX_FRAME_LEN (MB_MAX_ENCODED_LEN + 1u)

enum mb_type {
    MB_HELLO = 0x01,
    MB_SET_STREAM = 0x02,
    MB_VIBRATE = 0x03,
    MB_STOP = 0x04,
    MB_KEEPALIVE = 0x05,
    MB_SET_LIMIT = 0x06,
    MB_TARE = 0x07,
    MB_PATTERN_DEFINE = 0x08,
    MB_PLAY_PATTERN = 0x09,
    MB_DEVICE_INFO = 0x81,
    MB_FORCE_BATCH = 0x82,
    MB_STATUS = 0x83,
    MB_ACK = 0x84,
    MB_NACK = 0x85,
    MB_TARE_RESULT = 0x86
};

enum mb_nack_code {
    MB_NACK_UNKNOWN_TYPE = 1,
    MB_NACK_BAD_LENGTH = 2,
    MB_NACK_OUT_OF_RANGE = 3,
    MB_NACK_BAD_VERSION = 4,
    MB_NACK_LIMIT_TRIPPED = 5,
    MB_NACK_NOT_READY = 6,
    MB_NACK_NO_LIMIT = 7
};

enum mb_status_flag {
    MB_FLAG_LIMIT_TRIPPED = 0x01,
    MB_FLAG_KEEPALIVE_LOST = 0x02,
    MB_FLAG_SENSOR_FAULT = 0x04,
    MB_FLAG_MOTOR_ON = 0x08
};

enum mb_motor_kind { MB_MOTOR_NONE = 0, MB_MOTOR_ERM = 1, MB_MOTOR_LRA = 2, MB_MOTOR_PERCUSSIVE = 3 };
enum mb_waveform { MB_WAVE_CONTINUOUS = 0, MB_WAVE_PULSE = 1, MB_WAVE_SINE_SWELL = 2 };

typedef struct {
    char model[16];
    char firmware[8];
    char serial_number[16];
    uint8_t protocol_version;
    uint16_t rate_min_hz;
    uint16_t rate_max_hz;
    uint8_t motor_kind;
    uint16_t motor_freq_min_hz;
    uint16_t motor_freq_max_hz;
    float cal_scale_counts_per_n;
    int32_t cal_offset_counts;
    uint32_t limit_max_mn;
} mb_device_info_t;

typedef struct {
    uint32_t t_us;
    uint16_t rate_hz;
    uint8_t count;
    int32_t samples[MB_MAX_SAMPLES_PER_BATCH];
} mb_force_batch_t;

typedef struct {
    uint16_t level_permille;
    uint16_t duration_ms;
} mb_pattern_step_t;

/* One message of any type: the header and the fields of its type. */
typedef struct {
    uint8_t type;
    uint16_t seq;
    union {
        struct { uint8_t protocol_version; } hello;
        struct { uint16_t rate_hz; uint8_t samples_per_batch; } set_stream;
        struct {
            uint16_t intensity_permille;
            uint16_t frequency_hz;
            uint8_t waveform;
            uint32_t duration_ms;
        } vibrate;
        struct { uint32_t limit_mn; } set_limit;
        struct {
            uint8_t pattern_id;
            uint8_t loop_from;
            uint8_t count;
            mb_pattern_step_t steps[MB_MAX_PATTERN_STEPS];
        } pattern_define;
        struct {
            uint8_t pattern_id;
            uint16_t intensity_permille;
            uint16_t cap_permille;
            uint16_t frequency_hz;
        } play_pattern;
        mb_device_info_t device_info;
        mb_force_batch_t force_batch;
        struct { uint8_t battery_pct; uint16_t motor_permille; uint8_t flags; } status;
        struct { uint16_t cmd_seq; uint8_t cmd_type; } ack;
        struct { uint16_t cmd_seq; uint8_t cmd_type; uint8_t code; } nack;
        struct { uint16_t cmd_seq; int32_t offset_counts; } tare_result;
    } u;
} mb_msg_t;

/* The result of mb_decode: MB_DECODE_OK, a Nack code (BAD_VERSION, UNKNOWN_TYPE,
 * BAD_LENGTH) for a message with a readable header, or MB_DECODE_NO_HEADER. */
#define MB_DECODE_OK 0
#define MB_DECODE_NO_HEADER (-1)

/* Fixed payload length of a type (after the header); -1 for an unknown type, and for
 * ForceBatch the length of its fixed part (7). */
int mb_payload_len(uint8_t type);
/* Header + payload of msg into buf; returns its length, or 0 if it does not fit cap or a
 * field is out of its wire range (a ForceBatch of more than 58 samples). */
size_t mb_encode(const mb_msg_t *msg, uint8_t *buf, size_t cap);
/* Parses len bytes; see MB_DECODE_OK above. Never reads past buf + len. */
int mb_decode(const uint8_t *buf, size_t len, mb_msg_t *out);

/* ---- serial framing: COBS(message || crc16_le) || 0x00 ---------------------------------- */

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor. */
uint16_t mb_crc16(const uint8_t *data, size_t len);
/* COBS-encodes len bytes into out (at most len + len / 254 + 1 bytes); returns the length,
 * 0 if cap is too small. */
size_t mb_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
/* Decodes a COBS block without its delimiter; returns the length, or -1 for bad COBS or an
 * output longer than cap. */
int mb_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
/* One serial frame for a message (header + payload), delimiter included; 0 if it does not
 * fit cap (MB_MAX_FRAME_LEN always does). */
size_t mb_frame_encode(const uint8_t *msg, size_t len, uint8_t *out, size_t cap);

typedef struct {
    uint32_t frames;        /* frames with a right CRC handed on */
    uint32_t crc_errors;
    uint32_t bad_frames;    /* bad COBS, too short, over-long runs */
    uint32_t dropped_bytes;
} mb_frame_stats_t;

/* Called with each frame whose CRC is right: its message bytes (header + payload). */
typedef void (*mb_frame_sink_t)(void *ctx, const uint8_t *msg, size_t len);

typedef struct {
    uint8_t buf[MB_MAX_ENCODED_LEN];
    size_t len;
    bool overflow;
    mb_frame_stats_t stats;
} mb_frame_decoder_t;

void mb_frame_decoder_init(mb_frame_decoder_t *d);
/* Feeds any chunk of the byte stream; resynchronises at the next 0x00 after garbage; a run
 * of more than MB_MAX_ENCODED_LEN bytes without a delimiter is dropped whole. */
void mb_frame_feed(mb_frame_decoder_t *d, const uint8_t *data, size_t len, mb_frame_sink_t sink,
                   void *ctx);

#endif
