// The few Status helpers this Abseil (20220623) lacks. Header-only; no I/O.
#ifndef MAILLENS_CORE_STATUS_MACROS_H_
#define MAILLENS_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns from the current function with the status of `expr` when it is not OK.
#define MAILLENS_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    const ::absl::Status maillens_status_ = (expr);      \
    if (!maillens_status_.ok()) return maillens_status_; \
  } while (0)

#define MAILLENS_STATUS_CONCAT_INNER_(a, b) a##b
#define MAILLENS_STATUS_CONCAT_(a, b) MAILLENS_STATUS_CONCAT_INNER_(a, b)

// `MAILLENS_ASSIGN_OR_RETURN(auto x, Foo());` declares x from an OK StatusOr or returns its
// error.
#define MAILLENS_ASSIGN_OR_RETURN(lhs, expr)                               \
  auto MAILLENS_STATUS_CONCAT_(maillens_statusor_, __LINE__) = (expr);     \
  if (!MAILLENS_STATUS_CONCAT_(maillens_statusor_, __LINE__).ok())         \
    return MAILLENS_STATUS_CONCAT_(maillens_statusor_, __LINE__).status(); \
  lhs = std::move(MAILLENS_STATUS_CONCAT_(maillens_statusor_, __LINE__)).value()

#endif  // MAILLENS_CORE_STATUS_MACROS_H_
