// oneDNN's 2-D convolutions as XLA:CPU FFI custom calls: NHWC activations, HWIO kernels, float32 or
// bfloat16. Built and loaded by genjax/nets/onednn.py; see its docstring.
//
// One handler per pass of y = conv(x, w) with strides and non-negative (lo, hi) padding:
//   genjax_onednn_conv_fwd          (x, w)  -> y
//   genjax_onednn_conv_bwd_data     (dy, w) -> dx   (also a transposed convolution's forward pass)
//   genjax_onednn_conv_bwd_weights  (x, dy) -> dw   (summed in float32, stored in dw's type; on output
//                                                    maps of at most 16 pixels as one matmul per tap)
//
// Threads: XLA:CPU hands a custom call its intra-op thread pool. Each call splits its batch into chunks
// (two per pool thread for forward and backward-data, one for the kernel gradient) and runs oneDNN
// single-threaded on each chunk, on that pool, the calling thread taking part. oneDNN's own OpenMP
// threads are never started, so no second pool competes with XLA's.

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using Tag = memory::format_tag;

namespace {

const dnnl::engine& Engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Chunks run on XLA's threads, one oneDNN thread each: OpenMP's setting is per calling thread.
void UseOneThread() {
  if (omp_get_max_threads() != 1) omp_set_num_threads(1);
}

// Runs body(0..n-1) on XLA's pool: the calling thread and `workers` - 1 pool tasks claim the n chunks
// one at a time, so a thread that another call keeps busy takes fewer. The caller waits only for chunks
// some thread has claimed, so a pool of one thread, or one busy with this very call, cannot deadlock; a
// task that starts after all chunks are claimed returns at once. The first exception a chunk throws is
// rethrown in the caller (an exception escaping a pool thread would end the process).
void ParallelFor(ffi::ThreadPool& pool, int64_t n, int64_t workers,
                 const std::function<void(int64_t)>& body) {
  if (n == 1) return body(0);
  struct State {
    std::atomic<int64_t> next{0}, done{0};
    int64_t n;
    const std::function<void(int64_t)>* body;
    std::mutex mu;
    std::condition_variable all_done;
    std::exception_ptr error;
  };
  auto state = std::make_shared<State>();
  state->n = n;
  state->body = &body;  // Read only by threads that claimed a chunk, all before the caller returns.
  auto work = [state] {
    for (int64_t i; (i = state->next.fetch_add(1)) < state->n;) {
      try {
        (*state->body)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(state->mu);
        if (!state->error) state->error = std::current_exception();
      }
      if (state->done.fetch_add(1) + 1 == state->n) {
        std::lock_guard<std::mutex> lock(state->mu);
        state->all_done.notify_all();
      }
    }
  };
  for (int64_t t = 1; t < workers; ++t) pool.Schedule([work] { work(); });
  work();
  std::unique_lock<std::mutex> lock(state->mu);
  state->all_done.wait(lock, [&] { return state->done.load() == n; });
  if (state->error) std::rethrow_exception(state->error);
}

// One convolution's geometry: x (N, IH, IW, IC), w (KH, KW, IC, OC), y (N, OH, OW, OC).
struct Conv {
  int64_t n, ih, iw, ic, kh, kw, oc, oh, ow;
  memory::dims strides, pad_lo, pad_hi;
  memory::data_type type;

  memory::desc x(int64_t batch) const { return {{batch, ic, ih, iw}, type, Tag::nhwc}; }
  memory::desc y(int64_t batch) const { return {{batch, oc, oh, ow}, type, Tag::nhwc}; }
  memory::desc w(memory::data_type t, Tag tag) const { return {{oc, ic, kh, kw}, t, tag}; }
  int64_t x_size() const { return ih * iw * ic; }  // elements per image
  int64_t y_size() const { return oh * ow * oc; }
  int64_t w_size() const { return kh * kw * ic * oc; }
  std::vector<int64_t> key(int pass, int64_t batch) const {
    return {pass, batch, ih, iw, ic, kh, kw, oc, oh, ow, strides[0], strides[1], pad_lo[0], pad_lo[1],
            pad_hi[0], pad_hi[1], static_cast<int64_t>(type)};
  }
};

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // So chunks can run one primitive at once.
  return attr;
}

dnnl::convolution_forward::primitive_desc ForwardDesc(const Conv& c, int64_t batch) {
  return {Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, c.x(batch),
          c.w(c.type, Tag::any), c.y(batch), c.strides, c.pad_lo, c.pad_hi, UserScratchpad()};
}

// A pass's primitive at one batch size, with the weights layout and scratchpad it wants.
struct Plan {
  dnnl::primitive primitive;
  memory::desc weights, scratchpad;
};

enum Pass { kForward, kBackwardData, kBackwardWeights };

Plan MakePlan(const Conv& c, Pass pass, int64_t batch) {
  UseOneThread();  // oneDNN sizes its blocking by the creating thread's thread count.
  auto fwd = ForwardDesc(c, batch);
  if (pass == kForward) return {dnnl::convolution_forward(fwd), fwd.weights_desc(), fwd.scratchpad_desc()};
  if (pass == kBackwardData) {
    dnnl::convolution_backward_data::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, c.x(batch), c.w(c.type, Tag::any), c.y(batch),
        c.strides, c.pad_lo, c.pad_hi, fwd, UserScratchpad());
    return {dnnl::convolution_backward_data(pd), pd.weights_desc(), pd.scratchpad_desc()};
  }
  dnnl::convolution_backward_weights::primitive_desc pd(
      Engine(), dnnl::algorithm::convolution_direct, c.x(batch), c.w(memory::data_type::f32, Tag::any),
      c.y(batch), c.strides, c.pad_lo, c.pad_hi, fwd, UserScratchpad());
  return {dnnl::convolution_backward_weights(pd), pd.diff_weights_desc(), pd.scratchpad_desc()};
}

const Plan& GetPlan(const Conv& c, Pass pass, int64_t batch) {
  static std::mutex mu;
  static std::map<std::vector<int64_t>, Plan> plans;
  auto key = c.key(pass, batch);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = plans.find(key); it != plans.end()) return it->second;
  }
  Plan plan = MakePlan(c, pass, batch);  // Outside the lock: creation compiles kernels.
  std::lock_guard<std::mutex> lock(mu);
  return plans.emplace(std::move(key), std::move(plan)).first->second;  // std::map keeps references.
}

void Reorder(const memory& from, const memory& to) {
  dnnl::stream stream(Engine());
  dnnl::reorder(from, to).execute(stream, const_cast<memory&>(from), const_cast<memory&>(to));
  stream.wait();
}

// The size of XLA's intra-op pool at the last call: the threads oneDNN runs on (reported by benchmarks).
std::atomic<int64_t> pool_threads{0};

// At least this many chunks per batch (genjax_onednn_set_min_chunks): tests split batches on one core.
std::atomic<int64_t> min_chunks{1};

// Chunks per pool thread. Two for the data passes: when another call keeps a thread busy, the others
// take over its share instead of waiting for it (3-5 % faster steps on 2 cores). One for the kernel
// gradient, which sums a float32 partial per chunk: more cost more than they balance.
constexpr int64_t kDataChunksPerThread = 2, kWeightsChunksPerThread = 1;

// The batch in chunks of about equal size, claimed by up to one worker per pool thread.
struct Chunks {
  int64_t count, size, total, workers;
  Chunks(int64_t batch, int64_t threads, int64_t per_thread) : total(batch) {
    pool_threads = threads;
    count = std::max<int64_t>(1, std::min(batch, std::max(threads * per_thread, min_chunks.load())));
    size = (batch + count - 1) / count;
    count = (batch + size - 1) / size;
    workers = std::max<int64_t>(1, std::min(threads, count));
  }
  int64_t begin(int64_t i) const { return i * size; }
  int64_t length(int64_t i) const { return std::min(size, total - i * size); }
};

char* Offset(void* base, int64_t elements, memory::data_type type) {
  return static_cast<char*>(base) + elements * static_cast<int64_t>(memory::data_type_size(type));
}

// Runs fwd or bwd-data: `in` (x or dy) to `out` (y or dx) with the HWIO kernel w, chunk by chunk.
void RunDataPass(ffi::ThreadPool& pool, const Conv& c, Pass pass, void* in, void* w, void* out) {
  UseOneThread();
  Chunks chunks(c.n, pool.num_threads(), kDataChunksPerThread);
  const bool forward = pass == kForward;
  // The kernel is reordered once per distinct chunk size (at most two plans; usually one layout).
  std::map<int64_t, memory> kernels;
  for (int64_t i = 0; i < chunks.count; ++i) {
    int64_t b = chunks.length(i);
    if (kernels.count(b)) continue;
    const Plan& plan = GetPlan(c, pass, b);
    memory user(c.w(c.type, Tag::hwio), Engine(), w);
    if (plan.weights == user.get_desc()) {
      kernels.emplace(b, user);
    } else {
      memory reordered(plan.weights, Engine());
      Reorder(user, reordered);
      kernels.emplace(b, reordered);
    }
  }
  ParallelFor(pool, chunks.count, chunks.workers, [&](int64_t i) {
    UseOneThread();
    int64_t b = chunks.length(i), first = chunks.begin(i);
    const Plan& plan = GetPlan(c, pass, b);
    const int64_t in_size = forward ? c.x_size() : c.y_size(), out_size = forward ? c.y_size() : c.x_size();
    memory in_mem(forward ? c.x(b) : c.y(b), Engine(), Offset(in, first * in_size, c.type));
    memory out_mem(forward ? c.y(b) : c.x(b), Engine(), Offset(out, first * out_size, c.type));
    memory scratch(plan.scratchpad, Engine());
    dnnl::stream stream(Engine());
    plan.primitive.execute(stream, {{forward ? DNNL_ARG_SRC : DNNL_ARG_DIFF_DST, in_mem},
                                    {DNNL_ARG_WEIGHTS, kernels.at(b)},
                                    {forward ? DNNL_ARG_DST : DNNL_ARG_DIFF_SRC, out_mem},
                                    {DNNL_ARG_SCRATCHPAD, scratch}});
    stream.wait();
  });
}

// Runs bwd-weights: each chunk's float32 kernel gradient in HWIO, then their sum in chunk order (the
// same rounding whichever thread ran which chunk), in dw's type.
void RunWeightsPass(ffi::ThreadPool& pool, const Conv& c, void* x, void* dy, void* dw,
                    memory::data_type dw_type) {
  UseOneThread();
  Chunks chunks(c.n, pool.num_threads(), kWeightsChunksPerThread);
  std::vector<std::vector<float>> partial(chunks.count, std::vector<float>(c.w_size()));
  ParallelFor(pool, chunks.count, chunks.workers, [&](int64_t i) {
    UseOneThread();
    int64_t b = chunks.length(i), first = chunks.begin(i);
    const Plan& plan = GetPlan(c, kBackwardWeights, b);
    memory x_mem(c.x(b), Engine(), Offset(x, first * c.x_size(), c.type));
    memory dy_mem(c.y(b), Engine(), Offset(dy, first * c.y_size(), c.type));
    memory hwio(c.w(memory::data_type::f32, Tag::hwio), Engine(), partial[i].data());
    const bool direct = plan.weights == hwio.get_desc();
    memory dw_mem = direct ? hwio : memory(plan.weights, Engine());
    memory scratch(plan.scratchpad, Engine());
    dnnl::stream stream(Engine());
    plan.primitive.execute(stream, {{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_DIFF_DST, dy_mem},
                                    {DNNL_ARG_DIFF_WEIGHTS, dw_mem}, {DNNL_ARG_SCRATCHPAD, scratch}});
    stream.wait();
    if (!direct) Reorder(dw_mem, hwio);
  });
  for (int64_t i = 1; i < chunks.count; ++i) {
    std::transform(partial[0].begin(), partial[0].end(), partial[i].begin(), partial[0].begin(),
                   std::plus<float>());
  }
  memory sum(c.w(memory::data_type::f32, Tag::hwio), Engine(), partial[0].data());
  Reorder(sum, memory(c.w(dw_type, Tag::hwio), Engine(), dw));  // A copy, or a rounding to bfloat16.
}

// The kernel gradient tap by tap: dw[i, j] = X_ij^T dy, where X_ij (N*OH*OW rows, IC columns) holds the
// input pixel that tap (i, j) meets at each output pixel (zeros in the padding). oneDNN's direct kernel
// gradient adds up each image's output pixels in turn, streaming the whole kernel gradient through the
// cache every few images: on output maps of a few pixels it runs at about half the matmul peak (DCGAN's
// 8x8x256 -> 4x4x512 layer, 5x5, 128 images: 110-130 ms, and from 85 to 170 ms from one process to
// another). Tap by tap, each tap's gradient is one matmul summed over the whole batch, the taps spread
// over XLA's pool: no partial sums, 68-76 ms on that layer (genjax.nets.layers.benchmark_kernel_gradients).
// On larger maps the direct kernel is faster (0.65-0.95x on the presets' 8x8 maps).
constexpr int64_t kTapsUpToOutputPixels = 16;

// -1: tap by tap where the output map has at most kTapsUpToOutputPixels pixels and the kernel more than
// one tap; 0: never; 1: always (genjax_onednn_set_weights_by_taps: tests check both forms on any shape).
std::atomic<int> weights_by_taps{-1};

bool WeightsByTaps(const Conv& c) {
  if (weights_by_taps >= 0) return weights_by_taps == 1;
  return c.oh * c.ow <= kTapsUpToOutputPixels && c.kh * c.kw > 1;
}

// X_ij is gathered and multiplied this many bytes of rows at a time, each block's product added to the
// tap's sum: the block stays in the core's cache (256 KiB: 1.0-1.1x the speed of one block of all rows).
std::atomic<int64_t> tap_block_bytes{1 << 18};

// The matmul of a block of `rows` rows: X_ij^T (IC x rows) times dy (rows x OC) into dw[i, j] in float32,
// added to what dw[i, j] holds when `accumulate`.
struct TapPlan {
  dnnl::matmul primitive;
  memory::desc taps, dy, scratchpad;
};

const TapPlan& GetTapPlan(const Conv& c, int64_t rows, bool accumulate) {
  static std::mutex mu;
  static std::map<std::vector<int64_t>, TapPlan> plans;
  std::vector<int64_t> key{rows, c.ic, c.oc, accumulate, static_cast<int64_t>(c.type)};
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = plans.find(key); it != plans.end()) return it->second;
  }
  UseOneThread();
  memory::desc taps({c.ic, rows}, c.type, memory::dims{1, c.ic});  // X_ij^T of X_ij stored row by row
  memory::desc dy({rows, c.oc}, c.type, Tag::ab);
  memory::desc dw({c.ic, c.oc}, memory::data_type::f32, Tag::ab);
  dnnl::primitive_attr attr = UserScratchpad();
  if (accumulate) {
    dnnl::post_ops sum;
    sum.append_sum(1.0f);
    attr.set_post_ops(sum);
  }
  dnnl::matmul::primitive_desc pd(Engine(), taps, dy, dw, attr);
  TapPlan plan{dnnl::matmul(pd), taps, dy, pd.scratchpad_desc()};
  std::lock_guard<std::mutex> lock(mu);
  return plans.emplace(std::move(key), std::move(plan)).first->second;
}

// Copies rows [first, first + count) of X_ij to `out`.
void GatherTap(const Conv& c, const void* x, int64_t i, int64_t j, int64_t first, int64_t count, char* out) {
  const int64_t pixel = c.ic * static_cast<int64_t>(memory::data_type_size(c.type));
  for (int64_t r = first; r < first + count; ++r, out += pixel) {
    const int64_t ox = r % c.ow, oy = (r / c.ow) % c.oh, n = r / (c.ow * c.oh);
    const int64_t iy = oy * c.strides[0] + i - c.pad_lo[0], ix = ox * c.strides[1] + j - c.pad_lo[1];
    if (iy < 0 || iy >= c.ih || ix < 0 || ix >= c.iw) {
      std::memset(out, 0, pixel);
    } else {
      std::memcpy(out, Offset(const_cast<void*>(x), ((n * c.ih + iy) * c.iw + ix) * c.ic, c.type), pixel);
    }
  }
}

// Runs bwd-weights tap by tap, each tap's float32 sum in dw (HWIO: tap t's IC x OC block), or rounded to
// dw's type from a float32 copy.
void RunWeightsByTaps(ffi::ThreadPool& pool, const Conv& c, void* x, void* dy, void* dw,
                      memory::data_type dw_type) {
  UseOneThread();
  const int64_t taps = c.kh * c.kw, rows = c.n * c.oh * c.ow;
  const int64_t pixel = c.ic * static_cast<int64_t>(memory::data_type_size(c.type));
  const int64_t block = std::clamp<int64_t>(tap_block_bytes / pixel, 1, rows);
  const bool direct = dw_type == memory::data_type::f32;
  std::vector<float> sum(direct ? 0 : c.w_size());
  float* out = direct ? static_cast<float*>(dw) : sum.data();
  pool_threads = pool.num_threads();
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(pool.num_threads(), taps));
  ParallelFor(pool, taps, workers, [&](int64_t t) {
    UseOneThread();
    std::vector<char> gathered(block * pixel);
    memory dw_mem({{c.ic, c.oc}, memory::data_type::f32, Tag::ab}, Engine(), out + t * c.ic * c.oc);
    for (int64_t first = 0; first < rows; first += block) {
      const int64_t count = std::min(block, rows - first);
      GatherTap(c, x, t / c.kw, t % c.kw, first, count, gathered.data());
      const TapPlan& plan = GetTapPlan(c, count, first > 0);
      memory taps_mem(plan.taps, Engine(), gathered.data());
      memory dy_mem(plan.dy, Engine(), Offset(dy, first * c.oc, c.type));
      memory scratch(plan.scratchpad, Engine());
      dnnl::stream stream(Engine());
      plan.primitive.execute(stream, {{DNNL_ARG_SRC, taps_mem}, {DNNL_ARG_WEIGHTS, dy_mem},
                                      {DNNL_ARG_DST, dw_mem}, {DNNL_ARG_SCRATCHPAD, scratch}});
      stream.wait();
    }
  });
  if (!direct) {
    memory f32(c.w(memory::data_type::f32, Tag::hwio), Engine(), sum.data());
    Reorder(f32, memory(c.w(dw_type, Tag::hwio), Engine(), dw));
  }
}

ffi::ErrorOr<memory::data_type> DnnlType(ffi::DataType type) {
  if (type == ffi::DataType::F32) return memory::data_type::f32;
  if (type == ffi::DataType::BF16) return memory::data_type::bf16;
  return ffi::Unexpected(ffi::Error::InvalidArgument("oneDNN convolutions take float32 or bfloat16"));
}

// The geometry from x's, w's and y's NHWC/HWIO shapes.
ffi::ErrorOr<Conv> MakeConv(ffi::Span<const int64_t> x, ffi::Span<const int64_t> w,
                            ffi::Span<const int64_t> y, ffi::DataType type, ffi::Span<const int64_t> strides,
                            ffi::Span<const int64_t> pad_lo, ffi::Span<const int64_t> pad_hi) {
  if (x.size() != 4 || w.size() != 4 || y.size() != 4 || strides.size() != 2 || pad_lo.size() != 2 ||
      pad_hi.size() != 2) {
    return ffi::Unexpected(ffi::Error::InvalidArgument("expected NHWC, HWIO and two strides and pads"));
  }
  auto dnnl_type = DnnlType(type);
  if (dnnl_type.has_error()) return ffi::Unexpected(dnnl_type.error());
  Conv c{x[0], x[1], x[2], x[3], w[0], w[1], w[3], y[1], y[2],
         {strides[0], strides[1]}, {pad_lo[0], pad_lo[1]}, {pad_hi[0], pad_hi[1]}, dnnl_type.value()};
  if (y[0] != c.n || w[2] != c.ic || y[3] != c.oc) {
    return ffi::Unexpected(ffi::Error::InvalidArgument("batch or channel sizes disagree"));
  }
  return c;
}

// oneDNN reports what it cannot do as exceptions; XLA wants them as errors.
ffi::Error Guard(const std::function<void()>& run) {
  try {
    run();
    return ffi::Error::Success();
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("oneDNN: ") + e.what());
  } catch (const std::exception& e) {
    return ffi::Error::Internal(e.what());
  }
}

#define CONV_ATTRS                                      \
  .Attr<ffi::Span<const int64_t>>("strides")            \
      .Attr<ffi::Span<const int64_t>>("padding_lo")     \
      .Attr<ffi::Span<const int64_t>>("padding_hi")

ffi::Error Forward(ffi::ThreadPool pool, ffi::AnyBuffer x, ffi::AnyBuffer w, ffi::Result<ffi::AnyBuffer> y,
                   ffi::Span<const int64_t> strides, ffi::Span<const int64_t> lo, ffi::Span<const int64_t> hi) {
  auto c = MakeConv(x.dimensions(), w.dimensions(), y->dimensions(), x.element_type(), strides, lo, hi);
  if (c.has_error()) return c.error();
  return Guard([&] { RunDataPass(pool, c.value(), kForward, x.untyped_data(), w.untyped_data(),
                                 y->untyped_data()); });
}

ffi::Error BackwardData(ffi::ThreadPool pool, ffi::AnyBuffer dy, ffi::AnyBuffer w,
                        ffi::Result<ffi::AnyBuffer> dx, ffi::Span<const int64_t> strides,
                        ffi::Span<const int64_t> lo, ffi::Span<const int64_t> hi) {
  auto c = MakeConv(dx->dimensions(), w.dimensions(), dy.dimensions(), dy.element_type(), strides, lo, hi);
  if (c.has_error()) return c.error();
  return Guard([&] { RunDataPass(pool, c.value(), kBackwardData, dy.untyped_data(), w.untyped_data(),
                                 dx->untyped_data()); });
}

ffi::Error BackwardWeights(ffi::ThreadPool pool, ffi::AnyBuffer x, ffi::AnyBuffer dy,
                           ffi::Result<ffi::AnyBuffer> dw, ffi::Span<const int64_t> strides,
                           ffi::Span<const int64_t> lo, ffi::Span<const int64_t> hi) {
  auto c = MakeConv(x.dimensions(), dw->dimensions(), dy.dimensions(), x.element_type(), strides, lo, hi);
  if (c.has_error()) return c.error();
  auto dw_type = DnnlType(dw->element_type());
  if (dw_type.has_error()) return dw_type.error();
  return Guard([&] {
    (WeightsByTaps(c.value()) ? RunWeightsByTaps : RunWeightsPass)(
        pool, c.value(), x.untyped_data(), dy.untyped_data(), dw->untyped_data(), dw_type.value());
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(genjax_onednn_conv_fwd, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>() CONV_ATTRS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(genjax_onednn_conv_bwd_data, BackwardData,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>() CONV_ATTRS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(genjax_onednn_conv_bwd_weights, BackwardWeights,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>() CONV_ATTRS);

extern "C" void genjax_onednn_set_min_chunks(int64_t n) { min_chunks = n; }
// Both return the setting they replace; a block of 0 bytes keeps the current one.
extern "C" int genjax_onednn_set_weights_by_taps(int mode) { return weights_by_taps.exchange(mode); }
extern "C" int64_t genjax_onednn_set_tap_block_bytes(int64_t bytes) {
  return bytes > 0 ? tap_block_bytes.exchange(bytes) : tap_block_bytes.load();
}
extern "C" int64_t genjax_onednn_pool_threads() { return pool_threads; }

// For genjax to say which path it takes: oneDNN's version and whether this CPU has bfloat16 arithmetic.
extern "C" const char* genjax_onednn_version() {
  static const std::string version = [] {
    const dnnl_version_t* v = dnnl_version();
    return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  }();
  return version.c_str();
}

extern "C" int genjax_onednn_has_bf16() {
  auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx ||
         isa == dnnl::cpu_isa::avx512_core_fp16 || isa == dnnl::cpu_isa::avx512_core_amx_fp16;
}
