/* simulacra: the rows of logits that need every token's, from a coarse copy of the output
 * layer, made exact for the tokens that could be sampled.
 *
 * Gemma 3's output layer is 262,144 tokens x 640; a row inside a string (where the grammar
 * allows nearly every token) needs all of them. llama.cpp's BF16 product reads 335 MB for
 * it. Here the layer is packed once, at load, into 4-bit integers with a float16 scale per
 * 32 values of a token (the Q4_0 rounding: a quarter of the bytes), laid out so that one
 * AVX512-VNNI instruction multiplies 16 tokens' 4 values by a hidden state's 4 (rounded to
 * 8 bits): `screen_pack`, `screen_coarse`. Those logits are off by up to about 2.5;
 * sampling keeps only tokens within a few logits of the best allowed one. So every allowed
 * token whose coarse logit is within a window of the best coarse one gets its logit
 * computed exactly (`screen_refine_rows`), from the final hidden state and the token's BF16 row,
 * the way llama.cpp's BF16 product does (the state rounded to BF16, products summed in
 * float32). See _screen.py.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
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

/* One row: the allowed tokens (mask: one bit per token in uint32 words, or NULL for all)
 * whose coarse logit is at least the best allowed coarse logit minus `window`, with their
 * exact logits, written from `*used` on in `ids` and `exact` (which hold `capacity`
 * entries; `*used` is advanced for the row by one atomic add, as rows run on several
 * threads). Sets *offset (-1 if the row did not fit: the caller grows the buffers and asks
 * again) and returns how many tokens the row has, or -1 for a hidden size this file does not
 * handle or no memory.
 *
 * One pass over the row (it is 1 MB: reading it is most of the time): a token is kept when
 * it is within the window of the best seen so far, in a buffer of the thread's own, and the
 * kept ones are filtered against the final best before their exact logits are computed. */
static int32_t screen_refine(const float *coarse, int32_t n_vocab, const uint32_t *mask,
                             const uint16_t *weights, const float *hidden, int32_t n_embd,
                             float window, int32_t *ids, float *exact, int64_t capacity,
                             int64_t *used, int64_t *offset) {
    static _Thread_local int32_t *kept = NULL;   /* up to n_vocab, kept for the next rows */
    static _Thread_local int32_t room = 0;
    STATE_T state[4096];
    if (n_embd > 4096 || n_embd % STATE_STEP != 0) {
        return -1;
    }
    if (room < n_vocab) {
        free(kept);
        kept = malloc((size_t) n_vocab * sizeof *kept);
        room = kept != NULL ? n_vocab : 0;
        if (kept == NULL) {
            return -1;
        }
    }
    float best = -INFINITY;
    int32_t seen = 0;
    for (int32_t t = 0; t < n_vocab; t++) {
        if (t % LANES == 0 && t + LANES <= n_vocab && !any_at_least(coarse + t, best - window)) {
            t += LANES - 1;
            continue;
        }
        if (coarse[t] >= best - window && allowed(mask, t)) {
            kept[seen++] = t;
            if (coarse[t] > best) {
                best = coarse[t];
            }
        }
    }
    int32_t n = 0;
    for (int32_t j = 0; j < seen; j++) {
        if (coarse[kept[j]] >= best - window) {
            kept[n++] = kept[j];
        }
    }
    const int64_t at = __atomic_fetch_add(used, (int64_t) n, __ATOMIC_RELAXED);
    if (at + n > capacity) {
        *offset = -1;
        return n;
    }
    *offset = at;
    ids += at;
    exact += at;
    memcpy(ids, kept, (size_t) n * sizeof *ids);
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

/* screen_refine for a step's rows at once, spread over `n_threads` threads (rows differ
 * in cost: one with thousands of tokens in its window takes the time of many). Row r has
 * its coarse logits at coarse[r], its mask at masks[r] (NULL: every token), its hidden state
 * at hidden[r] and its window in windows[r]; its tokens and exact logits go to ids and exact
 * from offsets[r] on (-1: it did not fit), counts[r] of them. The rows share the buffers, of
 * `capacity` entries, so that memory holds what the step needs, not rows x n_vocab. Returns
 * the entries the rows needed in all (more than `capacity`: ask again with bigger buffers),
 * or -1 if a row could not be refined (a hidden size this file does not handle, no memory). */
int64_t screen_refine_rows(int32_t rows, const float *const *coarse, int32_t n_vocab,
                           const uint32_t *const *masks, const uint16_t *weights,
                           const float *const *hidden, int32_t n_embd, const float *windows,
                           int32_t *ids, float *exact, int64_t capacity, int64_t *offsets,
                           int32_t *counts, int32_t n_threads) {
    int32_t failed = 0;
    int64_t used = 0;
    #pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1) reduction(|:failed)
    for (int32_t r = 0; r < rows; r++) {
        counts[r] = screen_refine(coarse[r], n_vocab, masks[r], weights, hidden[r], n_embd,
                                  windows[r], ids, exact, capacity, &used, &offsets[r]);
        failed |= counts[r] < 0;
    }
    return failed ? -1 : used;
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__F16C__)
#define GROUP 16   /* tokens packed together: one per 32-bit lane of a vector */
#define BLOCK 32   /* a token's values per scale */
#define PACKED_BLOCK (GROUP * BLOCK / 2)   /* bytes of one group's block: 16 x 32 nibbles */

/* The coarse layer of `weights` (n_vocab rows of n_embd BF16 values): for each group of 16
 * tokens and each block of 32 values, 4 x 64 bytes of nibbles and 16 float16 scales. Byte
 * 4j + m of the block's k-th 64 bytes holds token j's values 8k + m (low nibble) and
 * 8k + 4 + m (high), each as q + 8 with q in -8..7 (the value over the scale, rounded; the
 * scale is the block's largest magnitude, signed, over -8, as Q4_0 has it). */
int32_t screen_pack(const uint16_t *weights, int32_t n_vocab, int32_t n_embd,
                    uint8_t *packed, uint16_t *scales, int32_t n_threads) {
    if (n_vocab % GROUP != 0 || n_embd % BLOCK != 0) {
        return -1;
    }
    const int32_t n_blocks = n_embd / BLOCK, n_groups = n_vocab / GROUP;
    #pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int32_t g = 0; g < n_groups; g++) {
        for (int32_t b = 0; b < n_blocks; b++) {
            uint8_t *out = packed + ((int64_t) g * n_blocks + b) * PACKED_BLOCK;
            uint16_t *scale = scales + ((int64_t) g * n_blocks + b) * GROUP;
            for (int32_t j = 0; j < GROUP; j++) {
                const uint16_t *row = weights + (int64_t) (g * GROUP + j) * n_embd + b * BLOCK;
                float largest = 0, magnitude = 0;
                for (int i = 0; i < BLOCK; i++) {
                    float v = bf16_to_float(row[i]);
                    if (fabsf(v) > magnitude) {
                        magnitude = fabsf(v);
                        largest = v;
                    }
                }
                float d = largest / -8.0f, inverse = d != 0 ? 1.0f / d : 0.0f;
                scale[j] = _cvtss_sh(d, 0);
                uint8_t q[BLOCK];
                for (int i = 0; i < BLOCK; i++) {
                    int v = (int) nearbyintf(bf16_to_float(row[i]) * inverse) + 8;
                    q[i] = (uint8_t) (v < 0 ? 0 : v > 15 ? 15 : v);
                }
                for (int k = 0; k < BLOCK / 8; k++) {
                    for (int m = 0; m < 4; m++) {
                        out[k * 64 + j * 4 + m] = (uint8_t) (q[8 * k + m] | q[8 * k + 4 + m] << 4);
                    }
                }
            }
        }
    }
    return 0;
}

/* acc + w times the 4 bytes at x repeated, in one instruction: the broadcast made by the
 * load (compilers emit a separate broadcast for _mm512_set1_epi32, one more vector operation
 * for each product) */
static inline __attribute__((always_inline)) __m512i dpbusd_broadcast(__m512i acc, __m512i w,
                                                                      const int32_t *x) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*x));
    return acc;
}

/* One group's coarse logits for R hidden states (R a constant, so the accumulators stay in
 * registers). Per block: its 8 vectors of 4 values x 16 tokens are unpacked once for the R
 * states; each state's 32 products are summed exactly in int32, starting from minus 8 times
 * the sum of the state's values (the nibbles' offset), then scaled per token into float. */
static inline __attribute__((always_inline)) void group_logits(
        const uint8_t *packed, const uint16_t *scales, int32_t g, int32_t n_blocks,
        const int8_t *states, const int32_t *offsets, const float *state_scales, int32_t n_embd,
        float *out, int64_t n_vocab, const int R) {
    __m512 sum[4];
    for (int r = 0; r < R; r++) {
        sum[r] = _mm512_setzero_ps();
    }
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    for (int32_t b = 0; b < n_blocks; b++) {
        const uint8_t *block = packed + ((int64_t) g * n_blocks + b) * PACKED_BLOCK;
        __m512i w[8];
        for (int k = 0; k < 4; k++) {
            __m512i v = _mm512_loadu_si512((const void *) (block + 64 * k));
            w[2 * k] = _mm512_and_si512(v, nibble);
            w[2 * k + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
        }
        __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(
            (const __m256i *) (scales + ((int64_t) g * n_blocks + b) * GROUP)));
        for (int r = 0; r < R; r++) {
            const int32_t *x = (const int32_t *) (states + (int64_t) r * n_embd + BLOCK * b);
            __m512i acc = _mm512_set1_epi32(-offsets[r * n_blocks + b]);
            for (int i = 0; i < 8; i++) {
                acc = dpbusd_broadcast(acc, w[i], x + i);
            }
            sum[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), d, sum[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        _mm512_storeu_ps(out + r * n_vocab + (int64_t) g * GROUP,
                         _mm512_mul_ps(sum[r], _mm512_set1_ps(state_scales[r])));
    }
}

/* Coarse logits of `rows` final hidden states (rows x n_embd floats) into `out` (rows x
 * n_vocab), from `screen_pack`'s layer. Each state is rounded to int8 with one scale (its
 * largest magnitude over 127). Returns 0, or -1 for sizes the layer cannot have. */
int32_t screen_coarse(const uint8_t *packed, const uint16_t *scales, int32_t n_vocab,
                      int32_t n_embd, const float *hidden, int32_t rows, float *out,
                      int32_t n_threads) {
    if (n_vocab % GROUP != 0 || n_embd % BLOCK != 0 || rows <= 0) {
        return -1;
    }
    const int32_t n_blocks = n_embd / BLOCK, n_groups = n_vocab / GROUP;
    int8_t *states = malloc((size_t) rows * n_embd);
    int32_t *offsets = malloc((size_t) rows * n_blocks * sizeof(int32_t));
    float *state_scales = malloc((size_t) rows * sizeof(float));
    if (states == NULL || offsets == NULL || state_scales == NULL) {
        free(states), free(offsets), free(state_scales);
        return -1;
    }
    for (int32_t r = 0; r < rows; r++) {
        const float *h = hidden + (int64_t) r * n_embd;
        float magnitude = 0;
        for (int32_t i = 0; i < n_embd; i++) {
            magnitude = fmaxf(magnitude, fabsf(h[i]));
        }
        float s = magnitude / 127.0f, inverse = s != 0 ? 1.0f / s : 0.0f;
        state_scales[r] = s;
        for (int32_t b = 0; b < n_blocks; b++) {
            int32_t total = 0;
            for (int32_t i = 0; i < BLOCK; i++) {
                int v = (int) nearbyintf(h[b * BLOCK + i] * inverse);
                states[(int64_t) r * n_embd + b * BLOCK + i] = (int8_t) v;
                total += v;
            }
            offsets[r * n_blocks + b] = 8 * total;
        }
    }
    /* 4 states at a time (8 measured no faster, with and without the embedded broadcasts:
     * docs/performance.md); the rest 2 and 1 at a time */
    #pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int32_t g = 0; g < n_groups; g++) {
        int32_t r = 0;
#define GROUP_LOGITS(R) group_logits(packed, scales, g, n_blocks, states + (int64_t) r * n_embd, \
                                     offsets + r * n_blocks, state_scales + r, n_embd, \
                                     out + (int64_t) r * n_vocab, n_vocab, R)
        for (; r + 4 <= rows; r += 4) {
            GROUP_LOGITS(4);
        }
        if (rows - r >= 2) {
            GROUP_LOGITS(2);
            r += 2;
        }
        if (rows - r >= 1) {
            GROUP_LOGITS(1);
        }
#undef GROUP_LOGITS
    }
    free(states), free(offsets), free(state_scales);
    return 0;
}
#else
int32_t screen_pack(const uint16_t *weights, int32_t n_vocab, int32_t n_embd,
                    uint8_t *packed, uint16_t *scales, int32_t n_threads) {
    return -1;   /* no AVX512-VNNI: no coarse layer, every row gets llama.cpp's logits */
}

int32_t screen_coarse(const uint8_t *packed, const uint16_t *scales, int32_t n_vocab,
                      int32_t n_embd, const float *hidden, int32_t rows, float *out,
                      int32_t n_threads) {
    return -1;
}
#endif
