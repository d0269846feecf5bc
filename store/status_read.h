// The site's status and every host's queue, read from a data directory and given as the
// messages of maillens/v1/status.proto: what `maillens status` and `maillens queue` print with
// --data, and what the collector's StatusService answers (collector/status_service.h adds its
// own ingest rate). Reads only: a read-only Store or catalog connection opened per call.
//
// Thread-safety: the functions may be called from any thread.
#ifndef MAILLENS_STORE_STATUS_READ_H_
#define MAILLENS_STORE_STATUS_READ_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "maillens/v1/status.pb.h"
#include "store/site_state.h"

namespace maillens::store {

// The status as sent on the wire; `ingest` is left unset (the caller adds it when it has one).
maillens::v1::StatusResponse StatusToProto(const SiteStatus& status);

// Reads the status of the data directory `data_dir` (a read-only Store).
absl::StatusOr<maillens::v1::StatusResponse> ReadStatus(const std::string& data_dir,
                                                        const maillens::v1::StatusRequest& request,
                                                        absl::Time now);

// Reads every host's latest queue snapshot (request.host's only, when set) from the catalog
// of the data directory `data_dir`, read-only.
absl::StatusOr<maillens::v1::QueueResponse> ReadQueue(const std::string& data_dir,
                                                      const maillens::v1::QueueRequest& request,
                                                      absl::Time now);

}  // namespace maillens::store

#endif  // MAILLENS_STORE_STATUS_READ_H_
