/* Types of the golden vectors the test build generates from docs/protocol-vectors.json
 * (tests/c_vectors.py writes vectors.c). */
#ifndef MB_TEST_VECTORS_H
#define MB_TEST_VECTORS_H
#include <stddef.h>
#include <stdint.h>

#include "mb_protocol.h"

typedef struct {
    const char *name;
    mb_msg_t fields;
    const uint8_t *message;
    size_t message_len;
    const uint8_t *frame; /* NULL where the vector gives none */
    size_t frame_len;
} message_vector_t;

typedef struct {
    const char *name;
    const uint8_t *frame;
    size_t frame_len;
    const uint8_t *message;
    size_t message_len;
    int crc_errors; /* -1: not given */
    int messages;
} bad_frame_vector_t;

typedef struct {
    const char *name;
    long long value;
} expect_field_t;

typedef struct {
    const char *exchange;
    int exchange_index;
    int step;
    const uint8_t *send;
    size_t send_len;
    int expect_count; /* 0 or 1 */
    int expect_type;
    expect_field_t expect_fields[8];
    int same_reply_as; /* -1: none */
    int motor_on;      /* -1: not checked */
    long long limit_mn;
} rule_step_t;

extern const message_vector_t MESSAGE_VECTORS[];
extern const size_t MESSAGE_VECTOR_COUNT;
extern const bad_frame_vector_t BAD_FRAMES[];
extern const size_t BAD_FRAME_COUNT;
extern const rule_step_t RULE_STEPS[];
extern const size_t RULE_STEP_COUNT;
#endif
