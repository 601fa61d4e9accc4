// The only C++ in PromptLoop: a guarded C face over libtorch (ATen + autograd).
// Per-operator headers keep compile time down; `torch/torch.h` is deliberately not included.
#include "ctorch.h"

#include <ATen/core/Tensor.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <ATen/ops/abs.h>
#include <ATen/ops/add.h>
#include <ATen/ops/all.h>
#include <ATen/ops/amax.h>
#include <ATen/ops/amin.h>
#include <ATen/ops/any.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/argmax.h>
#include <ATen/ops/argmin.h>
#include <ATen/ops/atan2.h>
#include <ATen/ops/bernoulli.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/ceil.h>
#include <ATen/ops/clamp.h>
#include <ATen/ops/conv2d.h>
#include <ATen/ops/cos.h>
#include <ATen/ops/cumsum.h>
#include <ATen/ops/div.h>
#include <ATen/ops/embedding.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/eq.h>
#include <ATen/ops/erf.h>
#include <ATen/ops/exp.h>
#include <ATen/ops/expm1.h>
#include <ATen/ops/flatten.h>
#include <ATen/ops/flip.h>
#include <ATen/ops/floor.h>
#include <ATen/ops/floor_divide.h>
#include <ATen/ops/full.h>
#include <ATen/ops/gather.h>
#include <ATen/ops/ge.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/group_norm.h>
#include <ATen/ops/gt.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/isnan.h>
#include <ATen/ops/layer_norm.h>
#include <ATen/ops/le.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/linspace.h>
#include <ATen/ops/log.h>
#include <ATen/ops/log1p.h>
#include <ATen/ops/log_sigmoid.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/logical_and.h>
#include <ATen/ops/logical_not.h>
#include <ATen/ops/logical_or.h>
#include <ATen/ops/logsumexp.h>
#include <ATen/ops/lt.h>
#include <ATen/ops/masked_fill.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/max.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/mean.h>
#include <ATen/ops/minimum.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/multinomial.h>
#include <ATen/ops/ne.h>
#include <ATen/ops/neg.h>
#include <ATen/ops/pad.h>
#include <ATen/ops/pow.h>
#include <ATen/ops/prod.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/randperm.h>
#include <ATen/ops/reciprocal.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/remainder.h>
#include <ATen/ops/rms_norm.h>
#include <ATen/ops/round.h>
#include <ATen/ops/rsqrt.h>
#include <ATen/ops/rsub.h>
#include <ATen/ops/scaled_dot_product_attention.h>
#include <ATen/ops/scatter.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/sign.h>
#include <ATen/ops/silu.h>
#include <ATen/ops/sin.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/softplus.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/split_with_sizes.h>
#include <ATen/ops/sqrt.h>
#include <ATen/ops/square.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/std.h>
#include <ATen/ops/sub.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/tanh.h>
#include <ATen/ops/topk.h>
#include <ATen/ops/tril.h>
#include <ATen/ops/triu.h>
#include <ATen/ops/_upsample_bicubic2d_aa.h>
#include <ATen/ops/_upsample_bilinear2d_aa.h>
#include <ATen/ops/upsample_bicubic2d.h>
#include <ATen/ops/upsample_bilinear2d.h>
#include <ATen/ops/upsample_nearest2d.h>
#include <ATen/ops/var.h>
#include <ATen/ops/where.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

thread_local std::string lastError;

void setError(const char *message) { lastError = message ? message : "unknown error"; }

at::Tensor &T(ct_tensor t) { return *reinterpret_cast<at::Tensor *>(t); }
at::Generator &G(ct_generator g) { return *reinterpret_cast<at::Generator *>(g); }
ct_tensor wrap(at::Tensor t) { return reinterpret_cast<ct_tensor>(new at::Tensor(std::move(t))); }
std::optional<at::Tensor> opt(ct_tensor t) {
    if (t == nullptr) return std::nullopt;
    return T(t);
}
at::IntArrayRef ints(const int64_t *p, int n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }

at::ScalarType scalarType(int dtype) {
    switch (dtype) {
    case CT_F32: return at::kFloat;
    case CT_F16: return at::kHalf;
    case CT_BF16: return at::kBFloat16;
    case CT_I64: return at::kLong;
    case CT_I32: return at::kInt;
    case CT_U8: return at::kByte;
    case CT_BOOL: return at::kBool;
    case CT_F64: return at::kDouble;
    case CT_I8: return at::kChar;
    case CT_I16: return at::kShort;
    }
    TORCH_CHECK(false, "unknown dtype code ", dtype);
}

int dtypeCode(at::ScalarType s) {
    switch (s) {
    case at::kFloat: return CT_F32;
    case at::kHalf: return CT_F16;
    case at::kBFloat16: return CT_BF16;
    case at::kLong: return CT_I64;
    case at::kInt: return CT_I32;
    case at::kByte: return CT_U8;
    case at::kBool: return CT_BOOL;
    case at::kDouble: return CT_F64;
    case at::kChar: return CT_I8;
    case at::kShort: return CT_I16;
    default: return -1;
    }
}

at::Device device(int dev, int index) {
    if (dev == CT_CPU) return at::Device(at::kCPU);
    TORCH_CHECK(dev == CT_CUDA, "unknown device code ", dev);
    int count = static_cast<int>(at::detail::getCUDAHooks().deviceCount());
    TORCH_CHECK(count > 0, "CUDA was requested but no CUDA device is available "
                "(this libtorch sees none, or the binary was linked without torch_cuda)");
    TORCH_CHECK(index >= 0 && index < count, "CUDA device ", index, " was requested but only ",
                count, " device(s) exist");
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

at::TensorOptions options(int dtype, int dev, int index) {
    return at::TensorOptions().dtype(scalarType(dtype)).device(device(dev, index));
}

std::vector<int64_t> allDims(const at::Tensor &t) {
    std::vector<int64_t> dims(static_cast<size_t>(t.dim()));
    for (size_t i = 0; i < dims.size(); ++i) dims[i] = static_cast<int64_t>(i);
    return dims;
}

} // namespace

#define GUARD(fail, ...)                                                                         \
    try {                                                                                         \
        __VA_ARGS__                                                                               \
    } catch (const c10::Error &e) {                                                               \
        setError(e.what_without_backtrace());                                                     \
        return fail;                                                                              \
    } catch (const std::exception &e) {                                                           \
        setError(e.what());                                                                       \
        return fail;                                                                              \
    } catch (...) {                                                                               \
        setError("unknown C++ exception");                                                        \
        return fail;                                                                              \
    }

#define TENSOR(...) GUARD(nullptr, return wrap(__VA_ARGS__);)
#define STATUS(...) GUARD(1, __VA_ARGS__ return 0;)

extern "C" {

// MARK: errors, lifetime, properties

const char *ct_last_error(void) { return lastError.c_str(); }
void ct_free(ct_tensor t) { delete reinterpret_cast<at::Tensor *>(t); }
ct_tensor ct_shallow_copy(ct_tensor t) { TENSOR(T(t)) }
int ct_dim(ct_tensor t) { return static_cast<int>(T(t).dim()); }
int ct_sizes(ct_tensor t, int64_t *out) {
    auto s = T(t).sizes();
    for (size_t i = 0; i < s.size(); ++i) out[i] = s[i];
    return 0;
}
int ct_dtype(ct_tensor t) { return dtypeCode(T(t).scalar_type()); }
int ct_device_type(ct_tensor t) { return T(t).device().is_cuda() ? CT_CUDA : CT_CPU; }
int ct_device_index(ct_tensor t) { return T(t).device().is_cuda() ? T(t).device().index() : 0; }
int64_t ct_numel(ct_tensor t) { return T(t).numel(); }
int ct_is_contiguous(ct_tensor t) { return T(t).is_contiguous() ? 1 : 0; }
int ct_cuda_device_count(void) {
    GUARD(0, return static_cast<int>(at::detail::getCUDAHooks().deviceCount());)
}
void ct_set_num_threads(int n) {
    try { at::set_num_threads(n); } catch (...) {}
}
int ct_get_num_threads(void) { return at::get_num_threads(); }

// MARK: data in and out

ct_tensor ct_from_data(const void *data, const int64_t *shape, int ndim, int dtype) {
    GUARD(nullptr, {
        auto t = at::empty(ints(shape, ndim), at::TensorOptions().dtype(scalarType(dtype)));
        size_t n = static_cast<size_t>(t.numel()) * t.element_size();
        if (n > 0) std::memcpy(t.data_ptr(), data, n);
        return wrap(std::move(t));
    })
}

int ct_copy_data(ct_tensor t, void *dst, size_t nbytes) {
    STATUS({
        auto c = T(t).detach().to(at::kCPU).contiguous();
        size_t n = static_cast<size_t>(c.numel()) * c.element_size();
        TORCH_CHECK(n == nbytes, "copy of ", n, " bytes into a buffer of ", nbytes);
        if (n > 0) std::memcpy(dst, c.data_ptr(), n);
    })
}

int ct_item(ct_tensor t, double *out) { STATUS(*out = T(t).item().toDouble();) }

// MARK: creation

ct_tensor ct_full(const int64_t *shape, int ndim, double value, int dtype, int dev, int devIndex) {
    TENSOR(at::full(ints(shape, ndim), value, options(dtype, dev, devIndex)))
}
ct_tensor ct_arange(double start, double end, double step, int dtype, int dev, int devIndex) {
    TENSOR(at::arange(start, end, step, options(dtype, dev, devIndex)))
}
ct_tensor ct_linspace(double start, double end, int64_t steps, int dtype, int dev, int devIndex) {
    TENSOR(at::linspace(start, end, steps, options(dtype, dev, devIndex)))
}

// MARK: random generators

ct_generator ct_generator_new(uint64_t seed, int dev, int devIndex) {
    GUARD(nullptr, {
        auto d = device(dev, devIndex);
        at::Generator g = d.is_cuda() ? at::detail::getCUDAHooks().getNewGenerator(d.index())
                                      : at::detail::createCPUGenerator(seed);
        g.set_current_seed(seed);
        return reinterpret_cast<ct_generator>(new at::Generator(std::move(g)));
    })
}
void ct_generator_free(ct_generator g) { delete reinterpret_cast<at::Generator *>(g); }
ct_tensor ct_generator_get_state(ct_generator g) { TENSOR(G(g).get_state()) }
int ct_generator_set_state(ct_generator g, ct_tensor state) { STATUS(G(g).set_state(T(state));) }

ct_tensor ct_randn(const int64_t *shape, int ndim, int dtype, int dev, int devIndex, ct_generator g) {
    TENSOR(at::randn(ints(shape, ndim), G(g), options(dtype, dev, devIndex)))
}
ct_tensor ct_rand(const int64_t *shape, int ndim, int dtype, int dev, int devIndex, ct_generator g) {
    TENSOR(at::rand(ints(shape, ndim), G(g), options(dtype, dev, devIndex)))
}
ct_tensor ct_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int dtype, int dev,
                     int devIndex, ct_generator g) {
    TENSOR(at::randint(low, high, ints(shape, ndim), G(g), options(dtype, dev, devIndex)))
}
ct_tensor ct_randperm(int64_t n, int dev, int devIndex, ct_generator g) {
    TENSOR(at::randperm(n, G(g), options(CT_I64, dev, devIndex)))
}
ct_tensor ct_multinomial(ct_tensor probs, int64_t n, int replacement, ct_generator g) {
    TENSOR(at::multinomial(T(probs), n, replacement != 0, G(g)))
}
ct_tensor ct_bernoulli(ct_tensor p, ct_generator g) { TENSOR(at::bernoulli(T(p), G(g))) }
int ct_normal_(ct_tensor t, double mean, double std, ct_generator g) {
    STATUS(T(t).normal_(mean, std, G(g));)
}
int ct_uniform_(ct_tensor t, double low, double high, ct_generator g) {
    STATUS(T(t).uniform_(low, high, G(g));)
}

// MARK: shape

ct_tensor ct_reshape(ct_tensor t, const int64_t *shape, int ndim) { TENSOR(T(t).reshape(ints(shape, ndim))) }
ct_tensor ct_permute(ct_tensor t, const int64_t *dims, int ndim) { TENSOR(T(t).permute(ints(dims, ndim))) }
ct_tensor ct_transpose(ct_tensor t, int64_t d0, int64_t d1) { TENSOR(T(t).transpose(d0, d1)) }
ct_tensor ct_contiguous(ct_tensor t) { TENSOR(T(t).contiguous()) }
ct_tensor ct_cat(const ct_tensor *ts, int n, int64_t dim) {
    GUARD(nullptr, {
        std::vector<at::Tensor> v;
        v.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) v.push_back(T(ts[i]));
        return wrap(at::cat(v, dim));
    })
}
ct_tensor ct_stack(const ct_tensor *ts, int n, int64_t dim) {
    GUARD(nullptr, {
        std::vector<at::Tensor> v;
        v.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) v.push_back(T(ts[i]));
        return wrap(at::stack(v, dim));
    })
}
int ct_split_with_sizes(ct_tensor t, const int64_t *sizes, int n, int64_t dim, ct_tensor *out) {
    STATUS({
        auto parts = at::split_with_sizes(T(t), ints(sizes, n), dim);
        for (size_t i = 0; i < parts.size(); ++i) out[i] = wrap(parts[i]);
    })
}
ct_tensor ct_narrow(ct_tensor t, int64_t dim, int64_t start, int64_t length) {
    TENSOR(T(t).narrow(dim, start, length))
}
ct_tensor ct_slice(ct_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step) {
    TENSOR(T(t).slice(dim, start, end, step))
}
ct_tensor ct_select(ct_tensor t, int64_t dim, int64_t index) { TENSOR(T(t).select(dim, index)) }
ct_tensor ct_index_select(ct_tensor t, int64_t dim, ct_tensor index) {
    TENSOR(at::index_select(T(t), dim, T(index)))
}
ct_tensor ct_gather(ct_tensor t, int64_t dim, ct_tensor index) { TENSOR(at::gather(T(t), dim, T(index))) }
ct_tensor ct_scatter(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor src) {
    TENSOR(at::scatter(T(t), dim, T(index), T(src)))
}
ct_tensor ct_expand(ct_tensor t, const int64_t *shape, int ndim) { TENSOR(T(t).expand(ints(shape, ndim))) }
ct_tensor ct_repeat(ct_tensor t, const int64_t *reps, int ndim) { TENSOR(T(t).repeat(ints(reps, ndim))) }
ct_tensor ct_squeeze(ct_tensor t, int64_t dim) { TENSOR(T(t).squeeze(dim)) }
ct_tensor ct_squeeze_all(ct_tensor t) { TENSOR(T(t).squeeze()) }
ct_tensor ct_unsqueeze(ct_tensor t, int64_t dim) { TENSOR(T(t).unsqueeze(dim)) }
ct_tensor ct_flatten(ct_tensor t, int64_t start, int64_t end) { TENSOR(at::flatten(T(t), start, end)) }
ct_tensor ct_pad(ct_tensor t, const int64_t *pads, int n, int mode, double value) {
    GUARD(nullptr, {
        const char *m = mode == CT_PAD_REFLECT ? "reflect" : mode == CT_PAD_REPLICATE ? "replicate"
                                                                                       : "constant";
        std::optional<double> v;
        if (mode == CT_PAD_CONSTANT) v = value;
        return wrap(at::pad(T(t), ints(pads, n), m, v));
    })
}
ct_tensor ct_tril(ct_tensor t, int64_t diagonal) { TENSOR(at::tril(T(t), diagonal)) }
ct_tensor ct_triu(ct_tensor t, int64_t diagonal) { TENSOR(at::triu(T(t), diagonal)) }
ct_tensor ct_masked_fill(ct_tensor t, ct_tensor mask, double value) {
    TENSOR(at::masked_fill(T(t), T(mask), value))
}
ct_tensor ct_flip(ct_tensor t, const int64_t *dims, int ndim) { TENSOR(at::flip(T(t), ints(dims, ndim))) }

// MARK: elementwise

ct_tensor ct_binary(int op, ct_tensor a, ct_tensor b) {
    GUARD(nullptr, {
        const at::Tensor &x = T(a), &y = T(b);
        switch (op) {
        case CT_ADD: return wrap(at::add(x, y));
        case CT_SUB: return wrap(at::sub(x, y));
        case CT_MUL: return wrap(at::mul(x, y));
        case CT_DIV: return wrap(at::div(x, y));
        case CT_POW: return wrap(at::pow(x, y));
        case CT_MAXIMUM: return wrap(at::maximum(x, y));
        case CT_MINIMUM: return wrap(at::minimum(x, y));
        case CT_EQ: return wrap(at::eq(x, y));
        case CT_NE: return wrap(at::ne(x, y));
        case CT_LT: return wrap(at::lt(x, y));
        case CT_LE: return wrap(at::le(x, y));
        case CT_GT: return wrap(at::gt(x, y));
        case CT_GE: return wrap(at::ge(x, y));
        case CT_LOGICAL_AND: return wrap(at::logical_and(x, y));
        case CT_LOGICAL_OR: return wrap(at::logical_or(x, y));
        case CT_REMAINDER: return wrap(at::remainder(x, y));
        case CT_ATAN2: return wrap(at::atan2(x, y));
        case CT_FLOOR_DIVIDE: return wrap(at::floor_divide(x, y));
        }
        TORCH_CHECK(false, "unknown binary op ", op);
    })
}

ct_tensor ct_binary_scalar(int op, ct_tensor t, double s, int reversed) {
    GUARD(nullptr, {
        const at::Tensor &x = T(t);
        at::Scalar c(s);
        if (reversed) {
            switch (op) {
            case CT_ADD: return wrap(at::add(x, c));
            case CT_MUL: return wrap(at::mul(x, c));
            case CT_SUB: return wrap(at::rsub(x, c));
            case CT_DIV: return wrap(at::mul(at::reciprocal(x), c));
            case CT_POW: return wrap(at::pow(c, x));
            default: {
                auto other = at::full({}, c, x.options());
                return ct_binary(op, reinterpret_cast<ct_tensor>(&other), t);
            }
            }
        }
        switch (op) {
        case CT_ADD: return wrap(at::add(x, c));
        case CT_SUB: return wrap(at::sub(x, c));
        case CT_MUL: return wrap(at::mul(x, c));
        case CT_DIV: return wrap(at::div(x, c));
        case CT_POW: return wrap(at::pow(x, c));
        case CT_EQ: return wrap(at::eq(x, c));
        case CT_NE: return wrap(at::ne(x, c));
        case CT_LT: return wrap(at::lt(x, c));
        case CT_LE: return wrap(at::le(x, c));
        case CT_GT: return wrap(at::gt(x, c));
        case CT_GE: return wrap(at::ge(x, c));
        case CT_REMAINDER: return wrap(at::remainder(x, c));
        case CT_FLOOR_DIVIDE: return wrap(at::floor_divide(x, c));
        default: {
            auto other = at::full({}, c, x.options());
            return ct_binary(op, t, reinterpret_cast<ct_tensor>(&other));
        }
        }
    })
}

ct_tensor ct_unary(int op, ct_tensor t) {
    GUARD(nullptr, {
        const at::Tensor &x = T(t);
        switch (op) {
        case CT_NEG: return wrap(at::neg(x));
        case CT_EXP: return wrap(at::exp(x));
        case CT_LOG: return wrap(at::log(x));
        case CT_SQRT: return wrap(at::sqrt(x));
        case CT_RSQRT: return wrap(at::rsqrt(x));
        case CT_SIGMOID: return wrap(at::sigmoid(x));
        case CT_TANH: return wrap(at::tanh(x));
        case CT_SILU: return wrap(at::silu(x));
        case CT_GELU: return wrap(at::gelu(x, "none"));
        case CT_GELU_TANH: return wrap(at::gelu(x, "tanh"));
        case CT_RELU: return wrap(at::relu(x));
        case CT_ABS: return wrap(at::abs(x));
        case CT_SIN: return wrap(at::sin(x));
        case CT_COS: return wrap(at::cos(x));
        case CT_LOGICAL_NOT: return wrap(at::logical_not(x));
        case CT_FLOOR: return wrap(at::floor(x));
        case CT_CEIL: return wrap(at::ceil(x));
        case CT_ROUND: return wrap(at::round(x));
        case CT_SIGN: return wrap(at::sign(x));
        case CT_RECIPROCAL: return wrap(at::reciprocal(x));
        case CT_LOG1P: return wrap(at::log1p(x));
        case CT_EXPM1: return wrap(at::expm1(x));
        case CT_ISNAN: return wrap(at::isnan(x));
        case CT_ISFINITE: return wrap(at::isfinite(x));
        case CT_ERF: return wrap(at::erf(x));
        case CT_SQUARE: return wrap(at::square(x));
        case CT_LOG_SIGMOID: return wrap(at::log_sigmoid(x));
        case CT_SOFTPLUS: return wrap(at::softplus(x));
        }
        TORCH_CHECK(false, "unknown unary op ", op);
    })
}

ct_tensor ct_clamp(ct_tensor t, int hasMin, double min, int hasMax, double max) {
    GUARD(nullptr, {
        std::optional<at::Scalar> lo, hi;
        if (hasMin) lo = min;
        if (hasMax) hi = max;
        return wrap(at::clamp(T(t), lo, hi));
    })
}
ct_tensor ct_where(ct_tensor cond, ct_tensor a, ct_tensor b) { TENSOR(at::where(T(cond), T(a), T(b))) }
ct_tensor ct_to_dtype(ct_tensor t, int dtype) { TENSOR(T(t).to(scalarType(dtype))) }
ct_tensor ct_to_device(ct_tensor t, int dev, int devIndex) { TENSOR(T(t).to(device(dev, devIndex))) }
ct_tensor ct_clone(ct_tensor t) { TENSOR(T(t).clone()) }
int ct_equal(ct_tensor a, ct_tensor b) { GUARD(-1, return T(a).equal(T(b)) ? 1 : 0;) }

// MARK: reductions

ct_tensor ct_reduce(int op, ct_tensor t, const int64_t *dims, int ndims, int keepdim) {
    GUARD(nullptr, {
        const at::Tensor &x = T(t);
        std::vector<int64_t> d = ndims > 0 ? std::vector<int64_t>(dims, dims + ndims) : allDims(x);
        bool k = keepdim != 0;
        switch (op) {
        case CT_SUM: return wrap(at::sum(x, d, k));
        case CT_MEAN: return wrap(at::mean(x, d, k));
        case CT_AMAX: return wrap(at::amax(x, d, k));
        case CT_AMIN: return wrap(at::amin(x, d, k));
        case CT_LOGSUMEXP: return wrap(at::logsumexp(x, d, k));
        case CT_PROD: {
            at::Tensor r = x;
            std::vector<int64_t> sorted = d;
            std::sort(sorted.begin(), sorted.end(), [&](int64_t a, int64_t b) {
                return c10::maybe_wrap_dim(a, x.dim()) > c10::maybe_wrap_dim(b, x.dim());
            });
            for (auto dim : sorted) r = at::prod(r, dim, k);
            return wrap(r);
        }
        case CT_ALL: return wrap(at::all(x, at::OptionalIntArrayRef(d), k));
        case CT_ANY: return wrap(at::any(x, at::OptionalIntArrayRef(d), k));
        }
        TORCH_CHECK(false, "unknown reduction ", op);
    })
}
ct_tensor ct_var(ct_tensor t, const int64_t *dims, int ndims, double correction, int keepdim, int isStd) {
    GUARD(nullptr, {
        const at::Tensor &x = T(t);
        std::vector<int64_t> d = ndims > 0 ? std::vector<int64_t>(dims, dims + ndims) : allDims(x);
        std::optional<at::Scalar> c = at::Scalar(correction);
        if (isStd) return wrap(at::std(x, at::OptionalIntArrayRef(d), c, keepdim != 0));
        return wrap(at::var(x, at::OptionalIntArrayRef(d), c, keepdim != 0));
    })
}
ct_tensor ct_argmax(ct_tensor t, int64_t dim, int keepdim) { TENSOR(at::argmax(T(t), dim, keepdim != 0)) }
ct_tensor ct_argmin(ct_tensor t, int64_t dim, int keepdim) { TENSOR(at::argmin(T(t), dim, keepdim != 0)) }
int ct_max_dim(ct_tensor t, int64_t dim, int keepdim, ct_tensor *values, ct_tensor *indices) {
    STATUS({
        auto r = at::max(T(t), dim, keepdim != 0);
        *values = wrap(std::get<0>(r));
        *indices = wrap(std::get<1>(r));
    })
}
ct_tensor ct_cumsum(ct_tensor t, int64_t dim) { TENSOR(at::cumsum(T(t), dim)) }
int ct_topk(ct_tensor t, int64_t k, int64_t dim, int largest, int sorted, ct_tensor *values,
            ct_tensor *indices) {
    STATUS({
        auto r = at::topk(T(t), k, dim, largest != 0, sorted != 0);
        *values = wrap(std::get<0>(r));
        *indices = wrap(std::get<1>(r));
    })
}
int ct_sort(ct_tensor t, int64_t dim, int descending, ct_tensor *values, ct_tensor *indices) {
    STATUS({
        auto r = at::sort(T(t), /*stable=*/true, dim, descending != 0);
        *values = wrap(std::get<0>(r));
        *indices = wrap(std::get<1>(r));
    })
}

// MARK: linear algebra and neural-network kernels

ct_tensor ct_matmul(ct_tensor a, ct_tensor b) { TENSOR(at::matmul(T(a), T(b))) }
ct_tensor ct_bmm(ct_tensor a, ct_tensor b) { TENSOR(at::bmm(T(a), T(b))) }
ct_tensor ct_linear(ct_tensor x, ct_tensor w, ct_tensor b) { TENSOR(at::linear(T(x), T(w), opt(b))) }
ct_tensor ct_conv2d(ct_tensor x, ct_tensor w, ct_tensor b, const int64_t *stride,
                    const int64_t *padding, const int64_t *dilation, int64_t groups) {
    TENSOR(at::conv2d(T(x), T(w), opt(b), ints(stride, 2), ints(padding, 2), ints(dilation, 2), groups))
}
ct_tensor ct_interpolate(ct_tensor t, int64_t outH, int64_t outW, int mode, int alignCorners) {
    GUARD(nullptr, {
        std::vector<int64_t> size{outH, outW};
        bool ac = alignCorners != 0;
        switch (mode) {
        case CT_BILINEAR: return wrap(at::upsample_bilinear2d(T(t), size, ac));
        case CT_BICUBIC: return wrap(at::upsample_bicubic2d(T(t), size, ac));
        case CT_BILINEAR_AA: return wrap(at::_upsample_bilinear2d_aa(T(t), size, ac));
        case CT_BICUBIC_AA: return wrap(at::_upsample_bicubic2d_aa(T(t), size, ac));
        default: return wrap(at::upsample_nearest2d(T(t), size));
        }
    })
}
ct_tensor ct_group_norm(ct_tensor x, int64_t groups, ct_tensor w, ct_tensor b, double eps) {
    TENSOR(at::group_norm(T(x), groups, opt(w), opt(b), eps))
}
ct_tensor ct_layer_norm(ct_tensor x, const int64_t *shape, int ndim, ct_tensor w, ct_tensor b,
                        double eps) {
    TENSOR(at::layer_norm(T(x), ints(shape, ndim), opt(w), opt(b), eps))
}
ct_tensor ct_rms_norm(ct_tensor x, const int64_t *shape, int ndim, ct_tensor w, double eps) {
    TENSOR(at::rms_norm(T(x), ints(shape, ndim), opt(w), eps))
}
ct_tensor ct_softmax(ct_tensor t, int64_t dim) { TENSOR(at::softmax(T(t), dim)) }
ct_tensor ct_log_softmax(ct_tensor t, int64_t dim) { TENSOR(at::log_softmax(T(t), dim)) }
ct_tensor ct_embedding(ct_tensor weight, ct_tensor indices) { TENSOR(at::embedding(T(weight), T(indices))) }
ct_tensor ct_sdpa(ct_tensor q, ct_tensor k, ct_tensor v, ct_tensor mask, int causal, int hasScale,
                  double scale, int enableGqa) {
    GUARD(nullptr, {
        std::optional<double> s;
        if (hasScale) s = scale;
        return wrap(at::scaled_dot_product_attention(T(q), T(k), T(v), opt(mask), 0.0, causal != 0, s,
                                                     enableGqa != 0));
    })
}

// MARK: autograd

int ct_set_requires_grad(ct_tensor t, int flag) { STATUS(T(t).requires_grad_(flag != 0);) }
int ct_requires_grad(ct_tensor t) { return T(t).requires_grad() ? 1 : 0; }
int ct_is_leaf(ct_tensor t) { return T(t).is_leaf() ? 1 : 0; }
int ct_backward(ct_tensor t, ct_tensor grad, int retainGraph) {
    STATUS({
        std::optional<at::Tensor> g;
        if (grad) g = T(grad);
        T(t).backward(g.value_or(at::Tensor()), retainGraph != 0 ? std::optional<bool>(true)
                                                                  : std::optional<bool>());
    })
}
int ct_grad(ct_tensor t, ct_tensor *out) {
    STATUS({
        const at::Tensor &g = T(t).grad();
        *out = g.defined() ? wrap(g) : nullptr;
    })
}
int ct_zero_grad(ct_tensor t) { STATUS(T(t).mutable_grad().reset();) }
ct_tensor ct_detach(ct_tensor t) { TENSOR(T(t).detach()) }
int ct_set_grad_enabled(int enabled) {
    bool previous = c10::GradMode::is_enabled();
    c10::GradMode::set_enabled(enabled != 0);
    return previous ? 1 : 0;
}
int ct_is_grad_enabled(void) { return c10::GradMode::is_enabled() ? 1 : 0; }

// MARK: in-place updates

int ct_copy_(ct_tensor dst, ct_tensor src) { STATUS(T(dst).copy_(T(src));) }
int ct_fill_(ct_tensor t, double value) { STATUS(T(t).fill_(value);) }
int ct_mul_scalar_(ct_tensor t, double s) { STATUS(T(t).mul_(s);) }
int ct_add_(ct_tensor t, ct_tensor other, double alpha) { STATUS(T(t).add_(T(other), alpha);) }
int ct_lerp_(ct_tensor t, ct_tensor end, double weight) { STATUS(T(t).lerp_(T(end), weight);) }
int ct_addcmul_(ct_tensor t, ct_tensor a, ct_tensor b, double value) {
    STATUS(T(t).addcmul_(T(a), T(b), value);)
}
int ct_addcdiv_(ct_tensor t, ct_tensor a, ct_tensor b, double value) {
    STATUS(T(t).addcdiv_(T(a), T(b), value);)
}

// MARK: benchmark support

int64_t ct_bench_binary_loop(int op, ct_tensor a, ct_tensor b, int64_t n) {
    GUARD(-1, {
        auto start = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < n; ++i) ct_free(ct_binary(op, a, b));
        auto end = std::chrono::steady_clock::now();
        return static_cast<int64_t>(std::chrono::duration<double, std::nano>(end - start).count());
    })
}

} // extern "C"
