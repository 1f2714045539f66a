/* simulacra: exact logits for the tokens a coarse screen says could be sampled.
 *
 * llama.cpp computes the rows that need every token's logit from a Q4_0 copy of Gemma 3's
 * output layer (a quarter of the BF16 layer's bytes, read once per decode step). Those
 * logits are off by up to about 2; sampling keeps only tokens within a few logits of the
 * best allowed one. So the decoder takes every allowed token whose coarse logit is within
 * a window of the best coarse one and computes its logit exactly here, from the final
 * hidden state and the token's BF16 row, the way llama.cpp's BF16 product does (the state
 * rounded to BF16, products summed in float32). See _screen.py.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float bf16_to_float(uint16_t bits) {
    uint32_t wide = (uint32_t) bits << 16;
    float out;
    memcpy(&out, &wide, sizeof out);
    return out;
}

static inline uint16_t float_to_bf16(float value) {   /* round to nearest, ties to even */
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return (uint16_t) ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

static inline int allowed(const uint32_t *mask, int32_t token) {
    return mask == NULL || (mask[token >> 5] >> (token & 31)) & 1;
}

#if defined(__AVX512BF16__) && defined(__AVX512F__)
#include <immintrin.h>
/* sum of row[i] * state[i] with `state` already packed as BF16 pairs (n a multiple of 32):
 * the instruction llama.cpp's BF16 product uses, 32 products at a time */
static float dot(const uint16_t *row, const uint16_t *state, int32_t n) {
    __m512 acc = _mm512_setzero_ps();
    for (int32_t i = 0; i < n; i += 32) {
        __m512bh w = (__m512bh) _mm512_loadu_si512((const void *) (row + i));
        __m512bh x = (__m512bh) _mm512_loadu_si512((const void *) (state + i));
        acc = _mm512_dpbf16_ps(acc, w, x);
    }
    return _mm512_reduce_add_ps(acc);
}
#define STATE_T uint16_t
#define TO_STATE(x) float_to_bf16(x)
#define STATE_STEP 32
#else
/* sum of row[i] * state[i]; n a multiple of 16 */
static float dot(const uint16_t *row, const float *state, int32_t n) {
    float acc[16] = {0};
    for (int32_t i = 0; i < n; i += 16) {
        for (int k = 0; k < 16; k++) {
            acc[k] += bf16_to_float(row[i + k]) * state[i + k];
        }
    }
    float sum = 0;
    for (int k = 0; k < 16; k++) {
        sum += acc[k];
    }
    return sum;
}
#define STATE_T float
#define TO_STATE(x) bf16_to_float(float_to_bf16(x))
#define STATE_STEP 16
#endif

/* Whether any of the LANES values at `x` is at least `floor` (a loop the compiler turns into
 * one vector compare: the scans below look at single tokens only in blocks that pass). */
#define LANES 16
static inline int any_at_least(const float *x, float floor) {
    int any = 0;
    for (int k = 0; k < LANES; k++) {
        any |= x[k] >= floor;
    }
    return any;
}

/* The allowed tokens (mask: one bit per token in uint32 words, or NULL for all) whose
 * coarse logit is at least the best allowed coarse logit minus `window`, with their exact
 * logits. `ids` and `exact` have room for n_vocab entries. Returns how many were written
 * (0 if no token is allowed), or -1 for a hidden size this file does not handle.
 *
 * One pass over the row (it is 1 MB: reading it is most of the time): a token is kept when
 * it is within the window of the best seen so far, and the kept ones are filtered against
 * the final best before their exact logits are computed. */
int32_t screen_refine(const float *coarse, int32_t n_vocab, const uint32_t *mask,
                      const uint16_t *weights, const float *hidden, int32_t n_embd,
                      float window, int32_t *ids, float *exact) {
    STATE_T state[4096];
    if (n_embd > 4096 || n_embd % STATE_STEP != 0) {
        return -1;
    }
    float best = -INFINITY;
    int32_t seen = 0;
    for (int32_t t = 0; t < n_vocab; t++) {
        if (t % LANES == 0 && t + LANES <= n_vocab && !any_at_least(coarse + t, best - window)) {
            t += LANES - 1;
            continue;
        }
        if (coarse[t] >= best - window && allowed(mask, t)) {
            ids[seen++] = t;
            if (coarse[t] > best) {
                best = coarse[t];
            }
        }
    }
    int32_t n = 0;
    for (int32_t j = 0; j < seen; j++) {
        if (coarse[ids[j]] >= best - window) {
            ids[n++] = ids[j];
        }
    }
    for (int32_t i = 0; i < n_embd; i++) {
        state[i] = TO_STATE(hidden[i]);
    }
    const int32_t ahead = 4;   /* rows fetched ahead of the one being multiplied */
    for (int32_t j = 0; j < n; j++) {
        if (j + ahead < n) {
            const char *next = (const char *) (weights + (int64_t) ids[j + ahead] * n_embd);
            for (int32_t b = 0; b < n_embd * 2; b += 64) {
                __builtin_prefetch(next + b);
            }
        }
        exact[j] = dot(weights + (int64_t) ids[j] * n_embd, state, n_embd);
    }
    return n;
}
