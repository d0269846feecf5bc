// For the collector's tests: one agent's ingest stream, driven a batch at a time over real
// gRPC (collector/server_test.cc, collector/status_test.cc).
//
// Thread-safety: one thread per client, or Write from one and Read from another.
#ifndef MAILLENS_COLLECTOR_INGEST_TEST_CLIENT_H_
#define MAILLENS_COLLECTOR_INGEST_TEST_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "maillens/v1/ingest.grpc.pb.h"

namespace maillens::collector {

class IngestClient {
 public:
  // `token` empty: no authorization header.
  IngestClient(const std::shared_ptr<grpc::Channel>& channel, const std::string& token)
      : stub_(maillens::v1::IngestService::NewStub(channel)) {
    if (!token.empty()) context_.AddMetadata("authorization", "Bearer " + token);
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stream_ = stub_->Stream(&context_);
  }

  bool Write(const maillens::v1::Batch& batch) { return stream_->Write(batch); }

  std::optional<maillens::v1::Ack> Read() {
    maillens::v1::Ack ack;
    if (!stream_->Read(&ack)) return std::nullopt;
    return ack;
  }

  // The ack of `batch`, or nullopt when the stream ended (Finish says why).
  std::optional<maillens::v1::Ack> Send(const maillens::v1::Batch& batch) {
    if (!Write(batch)) return std::nullopt;
    return Read();
  }

  grpc::Status Finish() {
    stream_->WritesDone();
    maillens::v1::Ack ignored;
    while (stream_->Read(&ignored)) {
    }
    return stream_->Finish();
  }

 private:
  std::unique_ptr<maillens::v1::IngestService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<maillens::v1::Batch, maillens::v1::Ack>> stream_;
};

}  // namespace maillens::collector

#endif  // MAILLENS_COLLECTOR_INGEST_TEST_CLIENT_H_
