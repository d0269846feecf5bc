#include "core/event_json.h"

#include "core/json.h"

namespace maillens::core {
namespace {

bool AllDigits(std::string_view s) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

void AppendKey(std::string_view key, std::string* out) {
  out->push_back(',');
  out->push_back('"');
  out->append(key);
  out->append("\":");
}

}  // namespace

void AppendEventJson(const Event& ev, std::string_view raw, bool include_raw, std::string* out) {
  out->append("{\"ts\":");
  if (ev.ts_form == TimestampForm::kNone) {
    out->append("null");
  } else {
    out->push_back('"');
    AppendRfc3339Utc(ev.time_us, out);
    out->push_back('"');
  }
  AppendKey("host", out);
  AppendJsonString(ev.host, out);
  AppendKey("program", out);
  AppendJsonString(ev.program, out);
  AppendKey("pid", out);
  if (ev.pid >= 0) {
    out->append(std::to_string(ev.pid));
  } else {
    out->append("null");
  }
  AppendKey("queue_id", out);
  AppendJsonString(ev.queue_id, out);
  AppendKey("kind", out);
  AppendJsonString(KindName(ev.kind), out);
  if (ev.severity != Severity::kInfo) {
    AppendKey("severity", out);
    AppendJsonString(SeverityName(ev.severity), out);
  }
  for (int i = 0; i < kFieldCount; ++i) {
    Field f = static_cast<Field>(i);
    if (!ev.Has(f)) continue;
    AppendKey(FieldName(f), out);
    std::string_view v = ev.Get(f);
    if ((f == Field::kSize || f == Field::kNrcpt) && AllDigits(v)) {
      out->append(v);
    } else {
      AppendJsonString(v, out);
    }
  }
  if (!ev.queued_as.empty()) {
    AppendKey("queued_as", out);
    AppendJsonString(ev.queued_as, out);
    AppendKey("queued_as_form", out);
    AppendJsonString(NextHopFormName(ev.queued_as_form), out);
  }
  if (include_raw) {
    AppendKey("raw", out);
    if (!AppendJsonString(raw, out)) out->append(",\"raw_exact\":false");
  }
  out->push_back('}');
}

}  // namespace maillens::core
