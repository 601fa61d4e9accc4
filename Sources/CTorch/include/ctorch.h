// CTorch: the C face of libtorch used by the Swift `Torch` target.
//
// Conventions
// - Every function body is guarded: a C++ exception never crosses this boundary. On failure a
//   function returns NULL (handle results) or a non-zero status (int results) and the exception
//   text is kept in a thread-local buffer read by `ct_last_error`.
// - Handles own a reference to a tensor or generator; release them with `ct_free` /
//   `ct_generator_free`. Functions never take ownership of the handles passed to them.
// - Optional tensor arguments are NULL when absent.
// - No C++ type appears in this header.
#ifndef CTORCH_H
#define CTORCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_tensor_s *ct_tensor;
typedef struct ct_generator_s *ct_generator;

/// Element types. Values are part of the ABI between the shim and Swift.
enum {
    CT_F32 = 0, CT_F16 = 1, CT_BF16 = 2, CT_I64 = 3, CT_I32 = 4, CT_U8 = 5, CT_BOOL = 6,
    CT_F64 = 7, CT_I8 = 8, CT_I16 = 9
};
enum { CT_CPU = 0, CT_CUDA = 1 };

enum {
    CT_ADD = 0, CT_SUB, CT_MUL, CT_DIV, CT_POW, CT_MAXIMUM, CT_MINIMUM, CT_EQ, CT_NE, CT_LT, CT_LE,
    CT_GT, CT_GE, CT_LOGICAL_AND, CT_LOGICAL_OR, CT_REMAINDER, CT_ATAN2, CT_FLOOR_DIVIDE
};
enum {
    CT_NEG = 0, CT_EXP, CT_LOG, CT_SQRT, CT_RSQRT, CT_SIGMOID, CT_TANH, CT_SILU, CT_GELU,
    CT_GELU_TANH, CT_RELU, CT_ABS, CT_SIN, CT_COS, CT_LOGICAL_NOT, CT_FLOOR, CT_CEIL, CT_ROUND,
    CT_SIGN, CT_RECIPROCAL, CT_LOG1P, CT_EXPM1, CT_ISNAN, CT_ISFINITE, CT_ERF, CT_SQUARE,
    CT_LOG_SIGMOID, CT_SOFTPLUS
};
enum { CT_SUM = 0, CT_MEAN, CT_AMAX, CT_AMIN, CT_LOGSUMEXP, CT_PROD, CT_ALL, CT_ANY };
enum { CT_PAD_CONSTANT = 0, CT_PAD_REFLECT, CT_PAD_REPLICATE };
enum { CT_NEAREST = 0, CT_BILINEAR, CT_BICUBIC, CT_BILINEAR_AA, CT_BICUBIC_AA };

// MARK: errors, lifetime, properties
const char *ct_last_error(void);
void ct_free(ct_tensor t);
ct_tensor ct_shallow_copy(ct_tensor t);
int ct_dim(ct_tensor t);
int ct_sizes(ct_tensor t, int64_t *out);
int ct_dtype(ct_tensor t);
int ct_device_type(ct_tensor t);
int ct_device_index(ct_tensor t);
int64_t ct_numel(ct_tensor t);
int ct_is_contiguous(ct_tensor t);
int ct_cuda_device_count(void);
void ct_set_num_threads(int n);
int ct_get_num_threads(void);

// MARK: data in and out
/// Copies `numel * elementSize` bytes from `data` into a new contiguous CPU tensor.
ct_tensor ct_from_data(const void *data, const int64_t *shape, int ndim, int dtype);
/// Copies the tensor's elements (any device, any layout) into `dst`, which holds `nbytes`.
int ct_copy_data(ct_tensor t, void *dst, size_t nbytes);
int ct_item(ct_tensor t, double *out);

// MARK: creation
ct_tensor ct_full(const int64_t *shape, int ndim, double value, int dtype, int dev, int devIndex);
ct_tensor ct_arange(double start, double end, double step, int dtype, int dev, int devIndex);
ct_tensor ct_linspace(double start, double end, int64_t steps, int dtype, int dev, int devIndex);

// MARK: random generators (same algorithms as torch.Generator)
ct_generator ct_generator_new(uint64_t seed, int dev, int devIndex);
void ct_generator_free(ct_generator g);
ct_tensor ct_generator_get_state(ct_generator g);
int ct_generator_set_state(ct_generator g, ct_tensor state);
ct_tensor ct_randn(const int64_t *shape, int ndim, int dtype, int dev, int devIndex, ct_generator g);
ct_tensor ct_rand(const int64_t *shape, int ndim, int dtype, int dev, int devIndex, ct_generator g);
ct_tensor ct_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int dtype, int dev,
                     int devIndex, ct_generator g);
ct_tensor ct_randperm(int64_t n, int dev, int devIndex, ct_generator g);
ct_tensor ct_multinomial(ct_tensor probs, int64_t n, int replacement, ct_generator g);
ct_tensor ct_bernoulli(ct_tensor p, ct_generator g);
int ct_normal_(ct_tensor t, double mean, double std, ct_generator g);
int ct_uniform_(ct_tensor t, double low, double high, ct_generator g);

// MARK: shape
ct_tensor ct_reshape(ct_tensor t, const int64_t *shape, int ndim);
ct_tensor ct_permute(ct_tensor t, const int64_t *dims, int ndim);
ct_tensor ct_transpose(ct_tensor t, int64_t d0, int64_t d1);
ct_tensor ct_contiguous(ct_tensor t);
ct_tensor ct_cat(const ct_tensor *ts, int n, int64_t dim);
ct_tensor ct_stack(const ct_tensor *ts, int n, int64_t dim);
/// Splits along `dim` into pieces of the given sizes; writes `n` new handles into `out`.
int ct_split_with_sizes(ct_tensor t, const int64_t *sizes, int n, int64_t dim, ct_tensor *out);
ct_tensor ct_narrow(ct_tensor t, int64_t dim, int64_t start, int64_t length);
ct_tensor ct_slice(ct_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step);
ct_tensor ct_select(ct_tensor t, int64_t dim, int64_t index);
ct_tensor ct_index_select(ct_tensor t, int64_t dim, ct_tensor index);
ct_tensor ct_gather(ct_tensor t, int64_t dim, ct_tensor index);
ct_tensor ct_scatter(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor src);
ct_tensor ct_expand(ct_tensor t, const int64_t *shape, int ndim);
ct_tensor ct_repeat(ct_tensor t, const int64_t *reps, int ndim);
ct_tensor ct_squeeze(ct_tensor t, int64_t dim);
ct_tensor ct_squeeze_all(ct_tensor t);
ct_tensor ct_unsqueeze(ct_tensor t, int64_t dim);
ct_tensor ct_flatten(ct_tensor t, int64_t start, int64_t end);
ct_tensor ct_pad(ct_tensor t, const int64_t *pads, int n, int mode, double value);
ct_tensor ct_tril(ct_tensor t, int64_t diagonal);
ct_tensor ct_triu(ct_tensor t, int64_t diagonal);
ct_tensor ct_masked_fill(ct_tensor t, ct_tensor mask, double value);
ct_tensor ct_flip(ct_tensor t, const int64_t *dims, int ndim);

// MARK: elementwise
ct_tensor ct_binary(int op, ct_tensor a, ct_tensor b);
/// `reversed` computes `s op t` instead of `t op s`.
ct_tensor ct_binary_scalar(int op, ct_tensor t, double s, int reversed);
ct_tensor ct_unary(int op, ct_tensor t);
ct_tensor ct_clamp(ct_tensor t, int hasMin, double min, int hasMax, double max);
ct_tensor ct_where(ct_tensor cond, ct_tensor a, ct_tensor b);
ct_tensor ct_to_dtype(ct_tensor t, int dtype);
ct_tensor ct_to_device(ct_tensor t, int dev, int devIndex);
ct_tensor ct_clone(ct_tensor t);
int ct_equal(ct_tensor a, ct_tensor b);

// MARK: reductions (ndims == 0 reduces over every dimension)
ct_tensor ct_reduce(int op, ct_tensor t, const int64_t *dims, int ndims, int keepdim);
ct_tensor ct_var(ct_tensor t, const int64_t *dims, int ndims, double correction, int keepdim, int isStd);
ct_tensor ct_argmax(ct_tensor t, int64_t dim, int keepdim);
ct_tensor ct_argmin(ct_tensor t, int64_t dim, int keepdim);
int ct_max_dim(ct_tensor t, int64_t dim, int keepdim, ct_tensor *values, ct_tensor *indices);
ct_tensor ct_cumsum(ct_tensor t, int64_t dim);
int ct_topk(ct_tensor t, int64_t k, int64_t dim, int largest, int sorted, ct_tensor *values,
            ct_tensor *indices);
int ct_sort(ct_tensor t, int64_t dim, int descending, ct_tensor *values, ct_tensor *indices);

// MARK: linear algebra and neural-network kernels
ct_tensor ct_matmul(ct_tensor a, ct_tensor b);
ct_tensor ct_bmm(ct_tensor a, ct_tensor b);
ct_tensor ct_linear(ct_tensor x, ct_tensor w, ct_tensor b);
ct_tensor ct_conv2d(ct_tensor x, ct_tensor w, ct_tensor b, const int64_t *stride,
                    const int64_t *padding, const int64_t *dilation, int64_t groups);
ct_tensor ct_interpolate(ct_tensor t, int64_t outH, int64_t outW, int mode, int alignCorners);
ct_tensor ct_group_norm(ct_tensor x, int64_t groups, ct_tensor w, ct_tensor b, double eps);
ct_tensor ct_layer_norm(ct_tensor x, const int64_t *shape, int ndim, ct_tensor w, ct_tensor b,
                        double eps);
ct_tensor ct_rms_norm(ct_tensor x, const int64_t *shape, int ndim, ct_tensor w, double eps);
ct_tensor ct_softmax(ct_tensor t, int64_t dim);
ct_tensor ct_log_softmax(ct_tensor t, int64_t dim);
ct_tensor ct_embedding(ct_tensor weight, ct_tensor indices);
ct_tensor ct_sdpa(ct_tensor q, ct_tensor k, ct_tensor v, ct_tensor mask, int causal, int hasScale,
                  double scale, int enableGqa);

// MARK: autograd
int ct_set_requires_grad(ct_tensor t, int flag);
int ct_requires_grad(ct_tensor t);
int ct_is_leaf(ct_tensor t);
int ct_backward(ct_tensor t, ct_tensor grad, int retainGraph);
/// Writes the gradient handle into `out`, or NULL when the tensor has no gradient.
int ct_grad(ct_tensor t, ct_tensor *out);
int ct_zero_grad(ct_tensor t);
ct_tensor ct_detach(ct_tensor t);
/// Sets whether autograd records operations on this thread; returns the previous setting.
int ct_set_grad_enabled(int enabled);
int ct_is_grad_enabled(void);

// MARK: in-place updates (optimisers, parameter loading)
int ct_copy_(ct_tensor dst, ct_tensor src);
int ct_fill_(ct_tensor t, double value);
int ct_mul_scalar_(ct_tensor t, double s);
int ct_add_(ct_tensor t, ct_tensor other, double alpha);
int ct_lerp_(ct_tensor t, ct_tensor end, double weight);
int ct_addcmul_(ct_tensor t, ct_tensor a, ct_tensor b, double value);
int ct_addcdiv_(ct_tensor t, ct_tensor a, ct_tensor b, double value);

// MARK: benchmark support
/// Runs the binary op `n` times in C++ (result allocated and freed each time, as a wrapped call
/// would) and returns the elapsed nanoseconds, or -1 on error: the libtorch floor under any binding.
int64_t ct_bench_binary_loop(int op, ct_tensor a, ct_tensor b, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
