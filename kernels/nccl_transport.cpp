// The NCCL transport of the ring (lib/ring/transport.h): one rank per GPU, one thread per rank in this
// process, the communicators made together by ncclCommInitAll. A shift is one grouped ncclSend to rank+1
// and ncclRecv from rank-1 on the rank's own communication stream, ordered after the compute stream's work
// by an event, and the compute stream waits for it in finish_shift; the step in between overlaps it.
//
// libnccl is not linked: it is loaded with dlopen on first use (as cuBLAS, kernels/cublas_lazy.cpp), so a
// start that never uses it does not need it, and a build made without nccl.h refuses --transport nccl.
#include "kernels/ring_engine.h"

#include <dlfcn.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "lib/error.h"
#include "lib/ring/loopback.h"

#ifdef BSATTN_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include "kernels/cuda_check.h"
#endif

namespace bsattn::cuda {

#ifndef BSATTN_HAVE_NCCL

bool nccl_usable(std::string* why) {
  if (why) *why = "this bsattn was built without NCCL (nccl.h was not found when it was configured)";
  return false;
}

std::vector<std::unique_ptr<ring::Transport>> make_nccl_transports(int, const std::vector<void*>&) {
  std::string why;
  nccl_usable(&why);
  throw RuntimeFailure("--transport nccl: " + why + "; use --transport loopback");
}

#else

namespace {

#define BSATTN_NCCL_STR2(x) #x
#define BSATTN_NCCL_STR(x) BSATTN_NCCL_STR2(x)
constexpr const char* kNcclSoname = "libnccl.so." BSATTN_NCCL_STR(NCCL_MAJOR);

// The NCCL functions the transport calls, resolved once.
struct NcclApi {
  ncclResult_t (*comm_init_all)(ncclComm_t*, int, const int*) = nullptr;
  ncclResult_t (*comm_destroy)(ncclComm_t) = nullptr;
  ncclResult_t (*comm_abort)(ncclComm_t) = nullptr;
  ncclResult_t (*send)(const void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*recv)(void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*group_start)() = nullptr;
  ncclResult_t (*group_end)() = nullptr;
  const char* (*error_string)(ncclResult_t) = nullptr;
  std::string error;  // why it could not be loaded
};

const NcclApi& nccl_api() {
  static NcclApi api;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = ::dlopen(kNcclSoname, RTLD_NOW | RTLD_LOCAL);
#ifdef BSATTN_NCCL_DIR
    if (!lib) lib = ::dlopen((std::string(BSATTN_NCCL_DIR) + "/" + kNcclSoname).c_str(), RTLD_NOW | RTLD_LOCAL);
#endif
    if (!lib) {
      const char* e = ::dlerror();
      api.error = std::string("cannot load ") + kNcclSoname + (e ? std::string(": ") + e : "");
      return;
    }
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      if (!fn && api.error.empty()) api.error = std::string(kNcclSoname) + " has no " + name;
    };
    sym(api.comm_init_all, "ncclCommInitAll");
    sym(api.comm_destroy, "ncclCommDestroy");
    sym(api.comm_abort, "ncclCommAbort");
    sym(api.send, "ncclSend");
    sym(api.recv, "ncclRecv");
    sym(api.group_start, "ncclGroupStart");
    sym(api.group_end, "ncclGroupEnd");
    sym(api.error_string, "ncclGetErrorString");
  });
  return api;
}

void nccl_check(ncclResult_t r, const char* call) {
  if (r == ncclSuccess) return;
  const NcclApi& api = nccl_api();
  throw RuntimeFailure(std::string("NCCL error in ") + call + ": " +
                       (api.error_string ? api.error_string(r) : std::to_string(int(r))));
}

// The communicators of one ring of GPUs 0..N-1 and the host barrier of their threads.
struct NcclGroup {
  std::vector<ncclComm_t> comms;
  ring::LoopbackHub hub;  // the host barrier of the ranks' threads
  std::once_flag aborted;
  bool was_aborted = false;
  explicit NcclGroup(int n) : comms(size_t(n), nullptr), hub(n) {}
  ~NcclGroup() {
    if (was_aborted) return;  // ncclCommAbort freed them
    for (ncclComm_t c : comms)
      if (c) nccl_api().comm_destroy(c);
  }
  // A rank failed: every communicator is aborted, so that the peers' collectives return with an error
  // instead of waiting for it, and the host barrier throws.
  void abort() {
    std::call_once(aborted, [this] {
      was_aborted = true;
      hub.abort();
      for (ncclComm_t c : comms)
        if (c) nccl_api().comm_abort(c);
    });
  }
};

class NcclTransport : public ring::Transport {
 public:
  NcclTransport(std::shared_ptr<NcclGroup> group, int rank, cudaStream_t compute)
      : group_(std::move(group)), rank_(rank), compute_(compute) {
    CUDA_CHECK(cudaSetDevice(rank_));
    CUDA_CHECK(cudaStreamCreateWithFlags(&comm_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  }
  ~NcclTransport() override {
    cudaSetDevice(rank_);
    cudaStreamSynchronize(comm_);
    cudaEventDestroy(ready_);
    cudaEventDestroy(done_);
    cudaStreamDestroy(comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return int(group_->comms.size()); }

  void start_shift(const void* send, size_t send_bytes, void* recv, size_t recv_bytes) override {
    const NcclApi& api = nccl_api();
    const int n = size();
    CUDA_CHECK(cudaSetDevice(rank_));
    // The receive buffer was read by the steps already enqueued on the compute stream.
    CUDA_CHECK(cudaEventRecord(ready_, compute_));
    CUDA_CHECK(cudaStreamWaitEvent(comm_, ready_, 0));
    ncclComm_t c = group_->comms[size_t(rank_)];
    nccl_check(api.group_start(), "ncclGroupStart");
    nccl_check(api.send(send, send_bytes, ncclUint8, (rank_ + 1) % n, c, comm_), "ncclSend");
    nccl_check(api.recv(recv, recv_bytes, ncclUint8, (rank_ + n - 1) % n, c, comm_), "ncclRecv");
    nccl_check(api.group_end(), "ncclGroupEnd");
    bytes_sent_ += int64_t(send_bytes);
  }
  void finish_shift() override {
    CUDA_CHECK(cudaSetDevice(rank_));
    CUDA_CHECK(cudaEventRecord(done_, comm_));
    CUDA_CHECK(cudaStreamWaitEvent(compute_, done_, 0));
  }
  void barrier() override {
    CUDA_CHECK(cudaSetDevice(rank_));
    CUDA_CHECK(cudaStreamSynchronize(compute_));
    CUDA_CHECK(cudaStreamSynchronize(comm_));
    group_->hub.arrive_and_wait();
  }
  void abort() override { group_->abort(); }
  const char* name() const override { return "nccl"; }
  bool overlaps_compute() const override { return true; }

 private:
  std::shared_ptr<NcclGroup> group_;
  int rank_;
  cudaStream_t compute_;
  cudaStream_t comm_ = nullptr;
  cudaEvent_t ready_ = nullptr, done_ = nullptr;
};

// The communicators of GPUs 0..ranks-1, made once per rank count and kept for the process: a bench runs
// the ring many times, and ncclCommInitAll takes about a second. A group a failed ring aborted is made
// anew. The cache is never destroyed: at exit NCCL and the CUDA runtime may already be gone.
std::shared_ptr<NcclGroup> nccl_group(int ranks) {
  static std::mutex mu;
  static auto* groups = new std::map<int, std::shared_ptr<NcclGroup>>();
  std::lock_guard<std::mutex> lock(mu);
  std::shared_ptr<NcclGroup>& g = (*groups)[ranks];
  if (!g || g->was_aborted) {
    auto fresh = std::make_shared<NcclGroup>(ranks);
    std::vector<int> devices(static_cast<size_t>(ranks));
    for (int r = 0; r < ranks; ++r) devices[size_t(r)] = r;
    nccl_check(nccl_api().comm_init_all(fresh->comms.data(), ranks, devices.data()), "ncclCommInitAll");
    g = std::move(fresh);
  }
  return g;
}

}  // namespace

bool nccl_usable(std::string* why) {
  const NcclApi& api = nccl_api();
  if (!api.error.empty()) {
    if (why) *why = api.error;
    return false;
  }
  return true;
}

std::vector<std::unique_ptr<ring::Transport>> make_nccl_transports(int ranks, const std::vector<void*>& compute_streams) {
  std::string why;
  if (!nccl_usable(&why)) throw RuntimeFailure("--transport nccl: " + why + "; use --transport loopback");
  if (int(compute_streams.size()) != ranks) throw std::logic_error("make_nccl_transports: one compute stream per rank");
  std::shared_ptr<NcclGroup> group = nccl_group(ranks);
  std::vector<std::unique_ptr<ring::Transport>> t;
  for (int r = 0; r < ranks; ++r)
    t.push_back(std::make_unique<NcclTransport>(group, r, static_cast<cudaStream_t>(compute_streams[size_t(r)])));
  return t;
}

#endif  // BSATTN_HAVE_NCCL

}  // namespace bsattn::cuda
