// StatusService.GetStatus: the site as the collector sees it (proto maillens/v1/status.proto):
// agents with their connection, lag and last event, the ingest rate, partitions and disk use,
// recorded gaps and offline periods. StatusService.GetQueue: every host's latest queue
// snapshot, joined with the stored traces. The durable part is read from the data directory
// as `maillens --data` reads it (store/status_read.h); the ingest rate is this process's
// own (IngestRate), fed by the writer.
//
// Thread-safety: IngestRate and StatusServiceImpl may be used from any thread.
#ifndef MAILLENS_COLLECTOR_STATUS_SERVICE_H_
#define MAILLENS_COLLECTOR_STATUS_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/mutex.h"
#include "maillens/v1/ingest.pb.h"
#include "maillens/v1/status.grpc.pb.h"
#include "store/site_state.h"
#include "store/status_read.h"
#include "store/store.h"

namespace maillens::collector {

// Lines accepted per second, over the last minute and since the process started, and how far
// indexing is behind.
class IngestRate {
 public:
  explicit IngestRate(absl::Time started) : started_(started) {}

  void Add(uint64_t lines, absl::Time now);
  maillens::v1::IngestRate Snapshot(absl::Time now) const;
  // Where Snapshot reads the indexing backlog (batches, bytes). Set before serving.
  void SetBacklogSource(std::function<std::pair<uint64_t, uint64_t>()> source) {
    backlog_ = std::move(source);
  }

 private:
  static constexpr int kSeconds = 60;

  const absl::Time started_;
  std::function<std::pair<uint64_t, uint64_t>()> backlog_;
  mutable core::Mutex mu_;
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
  // Lines per second of the last kSeconds seconds, by unix second modulo kSeconds; a bucket
  // belongs to the second in seconds_.
  std::array<uint64_t, kSeconds> lines_ ABSL_GUARDED_BY(mu_) = {};
  std::array<int64_t, kSeconds> seconds_ ABSL_GUARDED_BY(mu_) = {};
};

// What `batch`, received from the agent of `host` and converted into `lines`, says about the
// agent (its hello, gaps, file progress, newest line); nullopt when nothing. InvalidArgument
// when it cannot be accepted (too many gaps, a gap without a host).
absl::StatusOr<std::optional<store::SiteUpdate>> SiteUpdateOfBatch(
    const maillens::v1::Batch& batch, const std::string& host,
    absl::Span<const store::LineRecord> lines, int64_t now_us);

class StatusServiceImpl final : public maillens::v1::StatusService::CallbackService {
 public:
  // Checks the caller's token (reader role) and runs `work` off the gRPC threads, finishing
  // the call with its status: QueryServiceImpl::Dispatch.
  using Dispatcher = std::function<grpc::ServerUnaryReactor*(
      grpc::CallbackServerContext*, const char* method, std::function<absl::Status()> work)>;

  // `rate` is borrowed and must outlive the service.
  StatusServiceImpl(std::string data_dir, Dispatcher dispatch, const IngestRate* rate)
      : data_dir_(std::move(data_dir)), dispatch_(std::move(dispatch)), rate_(rate) {}

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const maillens::v1::StatusRequest* request,
                                      maillens::v1::StatusResponse* response) override;
  grpc::ServerUnaryReactor* GetQueue(grpc::CallbackServerContext* context,
                                     const maillens::v1::QueueRequest* request,
                                     maillens::v1::QueueResponse* response) override;

 private:
  const std::string data_dir_;
  const Dispatcher dispatch_;
  const IngestRate* rate_;
};

}  // namespace maillens::collector

#endif  // MAILLENS_COLLECTOR_STATUS_SERVICE_H_
