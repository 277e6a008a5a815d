// 2-D convolutions (NHWC input, HWIO kernel) on oneDNN's CPU primitives, as XLA FFI handlers.
//
// Three handlers, the three computations of a convolution layer's training step:
//   lrjax_onednn_conv_fwd          y  = conv(x, w)
//   lrjax_onednn_conv_bwd_data     dx = conv_transpose(dy, w)
//   lrjax_onednn_conv_bwd_weights  dw = correlate(x, dy)
// Activations stay NHWC in XLA's buffers (oneDNN reads and writes them in place, so no transpose
// is added around the call); only the small kernel is reordered into the blocked layout oneDNN's
// fast kernels want. Leading dimensions before the last four (a vmapped batch: every operand
// carries them, see vmap_method="broadcast_all" on the Python side) are looped over.
// Strides, low/high paddings and the number of threads come as attributes; sizes come from the
// buffers.
//
// Threads: oneDNN's weight gradient sums partial results per thread, so its bits depend on the
// thread count. With an OpenMP build the handler sets that count itself (omp_set_num_threads on
// the calling thread, whose value oneDNN reads when it creates and runs a primitive), so results
// do not depend on OMP_NUM_THREADS, on the CPUs a process gets, or on who started it.

#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "xla/ffi/api/ffi.h"

#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
// From libgomp, which an OpenMP build of libdnnl loads; weak, so that a missing one is a null
// pointer (lrjax_onednn_threads_fixed says so) instead of a failure to load.
extern "C" void omp_set_num_threads(int) __attribute__((weak));
#endif

namespace ffi = xla::ffi;

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

enum Kind : int64_t { kFwd = 0, kBwdData = 1, kBwdWeights = 2 };

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// One stream per calling thread: XLA may run independent thunks on several threads at once.
dnnl::stream& Stream() {
  thread_local dnnl::stream stream(Engine());
  return stream;
}

// Scratch memory per thread, grown on demand and kept: the step calls the same shapes every time.
void* ThreadBuffer(int slot, size_t bytes) {
  struct Buf {
    void* p = nullptr;
    size_t n = 0;
    ~Buf() { std::free(p); }
  };
  thread_local std::array<Buf, 2> bufs;
  Buf& b = bufs[slot];
  if (b.n < bytes) {
    std::free(b.p);
    b.n = (bytes + 4095) / 4096 * 4096;
    b.p = std::aligned_alloc(64, b.n);
  }
  return b.p;
}

// Sizes of one (un-batched) convolution: N, C, H, W, O, KH, KW, OH, OW, strides, paddings.
struct Geometry {
  int64_t n, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pb, pl, pr;
  Dt dt;
  Kind kind;
  int64_t threads;

  auto key() const {
    return std::array<int64_t, 18>{n,  c,  h,  w,  o,  kh, kw, oh, ow,         sh,
                                   sw, pt, pb, pl, pr, static_cast<int64_t>(dt), kind, threads};
  }
  memory::desc x() const { return {{n, c, h, w}, dt, Tag::nhwc}; }
  memory::desc y() const { return {{n, o, oh, ow}, dt, Tag::nhwc}; }
  memory::desc w_user() const { return {{o, c, kh, kw}, dt, Tag::hwio}; }
  memory::desc w_any() const { return {{o, c, kh, kw}, dt, Tag::any}; }
  memory::dims strides() const { return {sh, sw}; }
  memory::dims pad_l() const { return {pt, pl}; }
  memory::dims pad_r() const { return {pb, pr}; }
};

// A primitive for one geometry, with the reorder between the user's HWIO kernel and its layout.
struct Plan {
  dnnl::primitive conv;
  memory::desc w_prim;
  bool reorder = false;
  dnnl::primitive w_reorder;  // HWIO -> w_prim (fwd, bwd data) or w_prim -> HWIO (bwd weights)
  memory::desc scratch;
};

dnnl::primitive_attr Attr() {
  dnnl::primitive_attr attr;
  // User scratchpad: the library's shared one is not safe when two threads run primitives.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::convolution_forward::primitive_desc ForwardPd(const Geometry& g) {
  return {Engine(),
          dnnl::prop_kind::forward_training,
          dnnl::algorithm::convolution_direct,
          g.x(),
          g.w_any(),
          g.y(),
          g.strides(),
          g.pad_l(),
          g.pad_r(),
          Attr()};
}

std::unique_ptr<Plan> MakePlan(const Geometry& g) {
  auto plan = std::make_unique<Plan>();
  auto fwd = ForwardPd(g);
  if (g.kind == kFwd) {
    plan->conv = dnnl::convolution_forward(fwd);
    plan->w_prim = fwd.weights_desc();
    plan->scratch = fwd.scratchpad_desc();
  } else if (g.kind == kBwdData) {
    dnnl::convolution_backward_data::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, g.x(), g.w_any(), g.y(), g.strides(),
        g.pad_l(), g.pad_r(), fwd, Attr());
    plan->conv = dnnl::convolution_backward_data(pd);
    plan->w_prim = pd.weights_desc();
    plan->scratch = pd.scratchpad_desc();
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, g.x(), g.w_any(), g.y(), g.strides(),
        g.pad_l(), g.pad_r(), fwd, Attr());
    plan->conv = dnnl::convolution_backward_weights(pd);
    plan->w_prim = pd.diff_weights_desc();
    plan->scratch = pd.scratchpad_desc();
  }
  plan->reorder = plan->w_prim != g.w_user();
  if (plan->reorder) {
    auto src = g.kind == kBwdWeights ? plan->w_prim : g.w_user();
    auto dst = g.kind == kBwdWeights ? g.w_user() : plan->w_prim;
    plan->w_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), src, Engine(), dst));
  }
  return plan;
}

// The calling thread's OpenMP thread count, before a primitive is created or run.
void UseThreads(int64_t threads) {
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
  if (omp_set_num_threads != nullptr && threads > 0) omp_set_num_threads(static_cast<int>(threads));
#endif
}

// Plans live for the process: a model has a few dozen distinct layer geometries.
const Plan& GetPlan(const Geometry& g) {
  static std::mutex mu;
  static std::map<std::array<int64_t, 18>, std::unique_ptr<Plan>> plans;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = plans[g.key()];
  if (!slot) slot = MakePlan(g);
  return *slot;
}

// Runs one convolution; `a`, `b` are the operands and `out` the result in the order of the kind:
// fwd (x, w) -> y, bwd data (dy, w) -> dx, bwd weights (x, dy) -> dw.
void Run(const Geometry& g, void* a, void* b, void* out) {
  UseThreads(g.threads);
  const Plan& plan = GetPlan(g);
  auto& eng = Engine();
  auto& stream = Stream();
  memory scratch(plan.scratch, eng, ThreadBuffer(0, plan.scratch.get_size()));
  memory w_tmp;
  if (plan.reorder) w_tmp = memory(plan.w_prim, eng, ThreadBuffer(1, plan.w_prim.get_size()));
  if (g.kind == kFwd) {
    memory x(g.x(), eng, a), w(g.w_user(), eng, b), y(g.y(), eng, out);
    if (plan.reorder) plan.w_reorder.execute(stream, {{DNNL_ARG_FROM, w}, {DNNL_ARG_TO, w_tmp}});
    plan.conv.execute(stream, {{DNNL_ARG_SRC, x},
                               {DNNL_ARG_WEIGHTS, plan.reorder ? w_tmp : w},
                               {DNNL_ARG_DST, y},
                               {DNNL_ARG_SCRATCHPAD, scratch}});
  } else if (g.kind == kBwdData) {
    memory dy(g.y(), eng, a), w(g.w_user(), eng, b), dx(g.x(), eng, out);
    if (plan.reorder) plan.w_reorder.execute(stream, {{DNNL_ARG_FROM, w}, {DNNL_ARG_TO, w_tmp}});
    plan.conv.execute(stream, {{DNNL_ARG_DIFF_DST, dy},
                               {DNNL_ARG_WEIGHTS, plan.reorder ? w_tmp : w},
                               {DNNL_ARG_DIFF_SRC, dx},
                               {DNNL_ARG_SCRATCHPAD, scratch}});
  } else {
    memory x(g.x(), eng, a), dy(g.y(), eng, b), dw(g.w_user(), eng, out);
    plan.conv.execute(stream, {{DNNL_ARG_SRC, x},
                               {DNNL_ARG_DIFF_DST, dy},
                               {DNNL_ARG_DIFF_WEIGHTS, plan.reorder ? w_tmp : dw},
                               {DNNL_ARG_SCRATCHPAD, scratch}});
    if (plan.reorder) plan.w_reorder.execute(stream, {{DNNL_ARG_FROM, w_tmp}, {DNNL_ARG_TO, dw}});
  }
  stream.wait();
}

ffi::Error Convolve(Kind kind, ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::Result<ffi::AnyBuffer> out,
                    int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
                    int64_t threads) {
  Dt dt;
  if (a.element_type() == ffi::F32) {
    dt = Dt::f32;
  } else if (a.element_type() == ffi::BF16) {
    dt = Dt::bf16;
  } else {
    return ffi::Error::InvalidArgument("lrjax oneDNN convolution: dtype must be f32 or bf16");
  }
  auto da = a.dimensions(), db = b.dimensions(), dout = out->dimensions();
  size_t rank = da.size();
  if (rank < 4 || db.size() != rank || dout.size() != rank) {
    return ffi::Error::InvalidArgument("lrjax oneDNN convolution: operands need equal rank >= 4");
  }
  // The three 4-d shapes (last four dims), as (x, w, y) whatever the kind.
  auto last4 = [rank](ffi::Span<const int64_t> d) {
    return std::array<int64_t, 4>{d[rank - 4], d[rank - 3], d[rank - 2], d[rank - 1]};
  };
  std::array<int64_t, 4> x, w, y;
  if (kind == kFwd) {
    x = last4(da), w = last4(db), y = last4(dout);
  } else if (kind == kBwdData) {
    y = last4(da), w = last4(db), x = last4(dout);
  } else {
    x = last4(da), y = last4(db), w = last4(dout);
  }
  Geometry g{x[0], x[3], x[1], x[2], w[3], w[0], w[1], y[1], y[2],
             sh,   sw,   pt,   pb,   pl,   pr,   dt,   kind, threads};
  int64_t groups = 1;
  for (size_t i = 0; i + 4 < rank; ++i) groups *= da[i];
  size_t bytes = dt == Dt::f32 ? 4 : 2;
  size_t step_a = a.element_count() / groups * bytes, step_b = b.element_count() / groups * bytes;
  size_t step_out = out->element_count() / groups * bytes;
  try {
    auto* pa = static_cast<char*>(a.untyped_data());
    auto* pb_ = static_cast<char*>(b.untyped_data());
    auto* po = static_cast<char*>(out->untyped_data());
    for (int64_t i = 0; i < groups; ++i) {
      Run(g, pa + i * step_a, pb_ + i * step_b, po + i * step_out);
    }
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("lrjax oneDNN convolution: ") + e.what());
  }
  return ffi::Error::Success();
}

template <Kind kKind>
ffi::Error ConvolveKind(ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::Result<ffi::AnyBuffer> out,
                        int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
                        int64_t threads) {
  return Convolve(kKind, a, b, out, sh, sw, pt, pb, pl, pr, threads);
}

auto Binding() {
  return ffi::Ffi::Bind()
      .Arg<ffi::AnyBuffer>()
      .Arg<ffi::AnyBuffer>()
      .Ret<ffi::AnyBuffer>()
      .Attr<int64_t>("sh")
      .Attr<int64_t>("sw")
      .Attr<int64_t>("pt")
      .Attr<int64_t>("pb")
      .Attr<int64_t>("pl")
      .Attr<int64_t>("pr")
      .Attr<int64_t>("threads");
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(LrjaxOnednnConvFwd, ConvolveKind<kFwd>, Binding());
XLA_FFI_DEFINE_HANDLER_SYMBOL(LrjaxOnednnConvBwdData, ConvolveKind<kBwdData>, Binding());
XLA_FFI_DEFINE_HANDLER_SYMBOL(LrjaxOnednnConvBwdWeights, ConvolveKind<kBwdWeights>, Binding());

// 1 if oneDNN builds all three primitives for a small convolution of this dtype (0: f32,
// 1: bf16) on this CPU, else 0; bf16 needs CPU support that not every machine has.
extern "C" int lrjax_onednn_supports(int bf16) {
  Dt dt = bf16 ? Dt::bf16 : Dt::f32;
  try {
    for (Kind kind : {kFwd, kBwdData, kBwdWeights}) {
      MakePlan(Geometry{2, 8, 8, 8, 8, 3, 3, 8, 8, 1, 1, 1, 1, 1, 1, dt, kind, 1});
    }
  } catch (const dnnl::error&) {
    return 0;
  }
  return 1;
}

// oneDNN's version as major * 10000 + minor * 100 + patch, for the one-line log of the path.
extern "C" int lrjax_onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return v->major * 10000 + v->minor * 100 + v->patch;
}

// 1 if the handlers fix oneDNN's thread count (an OpenMP build, its libgomp loaded) or oneDNN
// runs on the calling thread alone (a sequential build); 0 for TBB or thread-pool builds, whose
// count they cannot set.
extern "C" int lrjax_onednn_threads_fixed() {
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
  return omp_set_num_threads != nullptr;
#elif DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_SEQ
  return 1;
#else
  return 0;
#endif
}

// The name of oneDNN's CPU threading runtime, for the reason the path is off.
extern "C" const char* lrjax_onednn_threading() {
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
  return "OpenMP";
#elif DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_SEQ
  return "sequential";
#elif DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_TBB
  return "TBB";
#elif DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_THREADPOOL
  return "thread pool";
#else
  return "another runtime";
#endif
}
