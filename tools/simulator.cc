#include "tools/simulator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <queue>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace maillens::tools {
namespace {

constexpr int64_t kMs = 1000;
constexpr int64_t kSecond = 1000 * kMs;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// ---- randomness ---------------------------------------------------------------------------
// xoshiro256** seeded through splitmix64: the output depends on the seed alone, not on which
// standard library's distributions the program was built with.

uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& s : s_) s = SplitMix64(&seed);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n) for n > 0 (Lemire's multiply-shift; the bias is far below 2^-32).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform in [lo, hi].
  int64_t Range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
  }
  double Real() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Real() < p; }
  // Exponentially distributed with mean `mean` (any integer unit), truncated.
  int64_t Exp(int64_t mean) {
    return static_cast<int64_t>(-static_cast<double>(mean) * std::log1p(-Real()));
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Below(v.size())];
  }
  template <typename T, size_t N>
  const T& Pick(const T (&a)[N]) {
    return a[Below(N)];
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// ---- text helpers -------------------------------------------------------------------------

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

struct Civil {
  int year, month, day, hour, minute, second;
};

// Proleptic Gregorian date of a Unix second (H. Hinnant's days-to-civil).
Civil ToCivil(int64_t secs) {
  const int64_t days = FloorDiv(secs, 86400);
  const int64_t rem = secs - days * 86400;
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int year = static_cast<int>(yoe + era * 400 + (month <= 2 ? 1 : 0));
  return Civil{year,
               month,
               day,
               static_cast<int>(rem / 3600),
               static_cast<int>(rem / 60 % 60),
               static_cast<int>(rem % 60)};
}

void AppendDigits(std::string* s, int64_t v, int width) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 || n < width);
  while (n > 0) s->push_back(buf[--n]);
}

constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Postfix's format_tv() with two significant digits and the default 10 ms resolution:
// "0.38", "1.9", "0", "427" (whole seconds from 10 s up).
void AppendDelay(std::string* s, int64_t us) {
  if (us < 0) us = 0;
  if (us >= 10 * kSecond) {
    AppendDigits(s, us / kSecond, 1);
    return;
  }
  if (us >= kSecond) {
    const int64_t tenths = us / (kSecond / 10);
    AppendDigits(s, tenths / 10, 1);
    if (tenths % 10 != 0) {
      s->push_back('.');
      s->push_back(static_cast<char>('0' + tenths % 10));
    }
    return;
  }
  int64_t hundredths = us / (kSecond / 100);
  if (hundredths == 0) {
    s->push_back('0');
    return;
  }
  s->append("0.");
  if (hundredths % 10 == 0) {
    s->push_back(static_cast<char>('0' + hundredths / 10));
  } else {
    AppendDigits(s, hundredths, 2);
  }
}

std::string Hex(uint64_t v, int width) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  char buf[20];
  int n = 0;
  do {
    buf[n++] = kHex[v & 15];
    v >>= 4;
  } while (v > 0 || n < width);
  std::string out;
  while (n > 0) out.push_back(buf[--n]);
  return out;
}

// Postfix's "safe" alphabet for long queue IDs: digits and consonants, so no word can form.
constexpr char kSafeAlphabet[] = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";

std::string InBase(uint64_t v, int base, int width, const char* alphabet) {
  char buf[32];
  int n = 0;
  do {
    buf[n++] = alphabet[v % base];
    v /= base;
  } while (v > 0 || n < width);
  std::string out;
  while (n > 0) out.push_back(buf[--n]);
  return out;
}

constexpr char kAlnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

std::string RandomText(Rng* rng, int n, const char* alphabet, int alphabet_size) {
  std::string s;
  s.reserve(n);
  for (int i = 0; i < n; ++i) s.push_back(alphabet[rng->Below(alphabet_size)]);
  return s;
}
std::string Alnum(Rng* rng, int n) { return RandomText(rng, n, kAlnum, 62); }
std::string Lower(Rng* rng, int n) { return RandomText(rng, n, "abcdefghijklmnopqrstuvwxyz", 26); }
std::string Digits(Rng* rng, int n) { return RandomText(rng, n, "0123456789", 10); }
std::string LowerHex(Rng* rng, int n) { return RandomText(rng, n, "0123456789abcdef", 16); }

void AppendJsonString(std::string* out, const std::string& s) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out->append("\\u00");
          out->append(Hex(static_cast<unsigned char>(c), 2));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

// ---- the site -----------------------------------------------------------------------------

enum class Role { kDmz, kMx, kOut };

constexpr char kDomain[] = "example.test";
constexpr char kDmzPublicIp[] = "198.51.100.25";  // where the internet reaches postscreen
constexpr char kTls13[] =
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
    "server-signature RSA-PSS (2048 bits) server-digest SHA256";
constexpr char kTls12[] = "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)";

// How a foreign MTA words its replies; kDead never answers (mail to it expires).
enum class Form { kPostfix, kExim, kGmail, kMicrosoft, kSendmail, kDead };

const char* FormName(Form f) {
  switch (f) {
    case Form::kPostfix:
      return "postfix";
    case Form::kExim:
      return "exim";
    case Form::kGmail:
      return "gmail";
    case Form::kMicrosoft:
      return "microsoft";
    case Form::kSendmail:
      return "sendmail";
    case Form::kDead:
      return "dead";
  }
  return "";
}

struct Foreign {
  const char* domain;
  Form form;
  int weight;            // share of correspondence
  const char* mx;        // the host our smtp connects to
  const char* mx_net;    // its /24
  const char* out_pre;   // the host that sends us its mail: out_pre + last octet + out_post,
  const char* out_post;  // or out_pre alone when out_post is empty
  const char* out_net;
};

constexpr Foreign kForeign[] = {
    {"gmail.com", Form::kGmail, 24, "gmail-smtp-in.l.google.com", "142.250.102", "mail-wr1-f",
     ".google.com", "209.85.221"},
    {"customer-one.test", Form::kGmail, 8, "aspmx.l.google.com", "64.233.184", "mail-ed1-f",
     ".google.com", "209.85.208"},
    {"outlook.com", Form::kMicrosoft, 14, "outlook-com.olc.protection.outlook.com", "52.101.68",
     "mail-db8eur05on2", ".outbound.protection.outlook.com", "40.107.22"},
    {"contoso.test", Form::kMicrosoft, 8, "contoso-test.mail.protection.outlook.com", "52.101.73",
     "mail-am6eur05on2", ".outbound.protection.outlook.com", "40.107.21"},
    {"partner.test", Form::kPostfix, 12, "mx.partner.test", "203.0.113", "mail.partner.test", "",
     "203.0.113"},
    {"supplier.test", Form::kPostfix, 8, "mail.supplier.test", "185.199.40", "mail.supplier.test",
     "", "185.199.40"},
    {"lists.example.org", Form::kPostfix, 6, "mx1.example.org", "192.0.2", "lists.example.org", "",
     "192.0.2"},
    {"uni-exim.test", Form::kExim, 6, "mx1.uni-exim.test", "141.30.62", "mailout.uni-exim.test", "",
     "141.30.62"},
    {"isp.test", Form::kExim, 6, "mx00.isp.test", "212.227.17", "mout.isp.test", "", "212.227.15"},
    {"legacy.test", Form::kSendmail, 5, "mail.legacy.test", "80.67.18", "mail.legacy.test", "",
     "80.67.18"},
    {"defunct-shop.test", Form::kDead, 0, "mail.defunct-shop.test", "45.33.20", "", "", ""},
    {"old-partner.test", Form::kDead, 0, "mx.old-partner.test", "94.130.40", "", "", ""},
};
constexpr int kForeignCount = sizeof(kForeign) / sizeof(kForeign[0]);
// partner.test's MX with SimulatorOptions::loopback_hosts: a foreign Postfix on loopback.
constexpr char kLoopbackForeignIp[] = "127.0.0.25";

const std::vector<std::string>& LocalUsers() {
  static const std::vector<std::string>* users = [] {
    const char* first[] = {"alice",  "bob",   "carol",  "dave", "erin", "frank", "grace",
                           "heidi",  "ivan",  "judy",   "kim",  "leo",  "mia",   "nina",
                           "oscar",  "paul",  "quinn",  "rita", "sam",  "tina",  "uma",
                           "victor", "wendy", "xavier", "yara", "zoe"};
    const char* last[] = {"",       ".meyer", ".schmidt", ".nguyen",
                          ".rossi", ".khan",  ".smith",   ".garcia"};
    auto* v = new std::vector<std::string>();
    for (const char* l : last) {
      for (const char* f : first) v->push_back(absl::StrCat(f, l));
    }
    return v;
  }();
  return *users;
}

constexpr const char* kForeignLocalParts[] = {
    "newsletter", "noreply",  "john",   "mary",     "billing", "support", "info", "orders",
    "m.jones",    "k.tanaka", "anna.k", "invoices", "hr",      "sales",   "jobs", "no-reply"};
constexpr const char* kUnknownLocalParts[] = {"j.doe",        "sales2019",     "olduser",
                                              "test123",      "marketing-old", "info2",
                                              "former.staff", "webmaster2"};
constexpr const char* kAliasLocalParts[] = {"postmaster", "abuse", "root"};
constexpr const char* kSpamTlds[] = {"com", "net", "biz", "ru", "top", "xyz", "co.cz", "info"};
constexpr const char* kIspHosts[] = {".dip0.t-ipconnect.de", ".dyn.isp.test",
                                     ".cable.provider.test", ".mobile.carrier.test"};

// ---- hosts, processes, output -------------------------------------------------------------

// Processes of one program on one host: an idle process takes the next connection; busy ones
// make Postfix fork another (up to the process limit); a process exits after max_use uses or
// 100 s idle and its successor gets a new pid.
struct ProcessPool {
  struct Slot {
    int pid;
    int64_t busy_until;
    int64_t last_used;
    int uses;
  };
  int limit = 100;
  int max_use = 100;
  std::vector<Slot> slots;
};

struct PendingLine {
  int64_t t;     // true time, microseconds
  uint64_t seq;  // tie-break: the order the simulator decided the lines in
  std::string body;
};

struct LaterFirst {
  bool operator()(const PendingLine& a, const PendingLine& b) const {
    return a.t != b.t ? a.t > b.t : a.seq > b.seq;
  }
};

struct Host {
  SimHostOptions opt;
  Role role = Role::kDmz;
  int index = 0;
  std::string fqdn, ip;
  int64_t skew_us = 0;

  int64_t next_pid = 0;
  int qmgr_pid = 0, postscreen_pid = 0, pickup_pid = 0;
  ProcessPool smtpd, submission, reinject, cleanup, smtp, relay, amavis_smtp, lmtp, local, bounce,
      dovecot, amavis;

  // Queue IDs: when each ID last left the queue (true time), and every ID used, for reuse.
  absl::flat_hash_map<std::string, int64_t> id_busy_until;
  std::vector<std::string> used_ids;
  int64_t reuses = 0;
  // A short ID the next message of this host takes as soon as it is free (a message whose
  // expiry was logged after its `removed`, so the reuse follows it closely).
  std::string reuse_next;
  uint64_t inode = 0;

  std::priority_queue<PendingLine, std::vector<PendingLine>, LaterFirst> pending;
  int64_t lines = 0;

  // The stamp text of the last second written, so most lines format no date.
  int64_t cached_sec = std::numeric_limits<int64_t>::min();
  std::string cached_stamp;
  std::string line;  // reused buffer
};

// ---- messages -----------------------------------------------------------------------------

enum class Fate : uint8_t { kOk, kUnknown, kDefer, kExpire, kReject };

struct Rcpt {
  std::string addr;
  Fate fate = Fate::kOk;
  int defers = 0;  // kDefer: failed attempts before success
};

struct Content {
  std::string message_id;  // without <>; empty: cleanup makes one (date.QID@host)
  std::string sender;      // envelope sender; empty is the null sender
  int64_t size = 0;
  bool spam = false;      // amavis blocks it
  std::string origin_ip;  // the first client's address, as amavis reports it
};

enum class Arrival { kInternet, kPeer, kSubmission, kReinject, kPickup, kBounce };

struct ArrivalSpec {
  Arrival kind = Arrival::kInternet;
  int64_t begin = 0;   // first line of the session
  int64_t accept = 0;  // kPeer, kReinject: when the 250 after DATA goes out
  std::string client_host, client_ip, helo;
  int client_port = 0;
  int peer = -1;  // kPeer: index of the sending host
  std::string sasl_user;
  bool tls = false;
  int uid = 0;              // kPickup
  std::string pickup_from;  // kPickup: "root", "alice"
};

struct TruthRcpt {
  std::string to, orig_to;
  const char* status = "queued";  // until a line says otherwise
};

struct Instance {
  int host = 0;
  std::string queue_id;
  const char* origin = "";
  Arrival arrival = Arrival::kInternet;
  std::string client_ip;  // of the SMTP session that brought it (amavis names it)
  bool reused = false;
  int64_t first_t = kNever;  // true time of its first written line
  int64_t qmgr_t = 0;
  std::string message_id, sender;
  std::vector<TruthRcpt> rcpts;
  const char* disposition = "";  // "rejected", "discarded": what ended it in cleanup
};

struct Link {
  const Instance* from;
  const Instance* to;
  const char* kind;
  bool shown;  // the line that proves it was written
};

struct External {
  const Instance* from;
  std::vector<std::string> to;
  std::string relay, queued_as;
  Form form;
  bool collides;
};

enum class Route : uint8_t { kAmavis, kRelay, kLmtp, kLocal, kInternet };

struct Dest {
  Route route;
  int peer = -1;  // kRelay
  int mta = -1;   // kInternet: index into kForeign
  bool operator==(const Dest& o) const {
    return route == o.route && peer == o.peer && mta == o.mta;
  }
};

enum class Outcome : uint8_t { kSent, kDeferred, kBounced };

struct Group {
  Dest dest;
  std::vector<int> rcpts;  // indexes into the instance's accepted recipients
  std::vector<Outcome> outcomes;
  bool connect_failed = false;
  int64_t handoff = 0, setup = 0, done = 0;
};

struct Pass {
  int64_t active = 0;  // entered the active queue
  std::vector<Group> groups;
  int64_t end = 0;
  bool bounced_any = false;
  bool expire = false;
};

// A recipient as it reaches a hop: where it goes and what the log will call it.
struct Accepted {
  Rcpt rcpt;
  Dest dest;
  std::string to, orig_to;  // as logged (local(8) logs the alias target)
  int truth = 0;            // index into Instance::rcpts
};

struct SessionTimes {
  int64_t connect = 0, listed = 0, smtpd_connect = 0, tls = 0, client = 0, cleanup = 0, accept = 0,
          qmgr = 0, disconnect = 0;
  std::vector<int64_t> rejects;
};

// ---- the simulator ------------------------------------------------------------------------

enum class ScenarioKind {
  kInbound,
  kOutbound,
  kInternal,
  kPickup,
  kSpam,
  kReject,
  kSasl,
  kNoise,
  kContentCheck
};

class Sim {
 public:
  Sim(const SimulatorOptions& options, SimulatorSink* sink, uint64_t seed);

  // Plays `count` scenarios, their start times spread over the span.
  void Run(int64_t count);
  const SimulatorSummary& summary() const { return summary_; }

 private:
  // Output.
  bool Emit(int host, int64_t t, std::string body);
  bool EmitQ(Instance* in, int64_t t, std::string body);
  void FlushBefore(int64_t watermark);
  void WriteLine(Host& h, const PendingLine& p);
  int64_t WrittenUs(const Host& h, int64_t t) const;
  void WriteTruth();

  // Process IDs and queue IDs.
  int NewPid(Host& h);
  int Pid(Host& h, ProcessPool& pool, int64_t t, int64_t until, int* uses = nullptr);
  std::string Prog(const Host& h, const char* program, int pid) const;
  std::string AllocateQueueId(Host& h, int64_t first, int64_t last, bool* reused);
  std::string ForeignQueueId(Form form, int64_t t, bool* collides);

  // Messages.
  Instance* Receive(int host, const ArrivalSpec& a, Content c, const std::vector<Rcpt>& rcpts);
  Dest RouteFor(const Host& h, Arrival arrival, const std::string& addr) const;
  SessionTimes PlanSession(const ArrivalSpec& a, int rejects, int64_t size);
  std::vector<Pass> PlanPasses(const std::vector<Accepted>& acc, int64_t arrival,
                               int64_t first_active);
  void EmitSession(Instance* in, const ArrivalSpec& a, const SessionTimes& st, const Content& c,
                   const std::vector<Rcpt>& rcpts, const std::vector<bool>& rejected,
                   const std::vector<Accepted>& acc);
  void ExecuteGroup(Instance* in, const Content& c, const std::vector<Accepted>& acc,
                    int64_t arrival, const Pass& pass, const Group& g);
  void Notify(Instance* in, int64_t t);
  void Deliveries(Instance* in, const std::vector<Accepted>& acc, const Group& g, int64_t arrival,
                  int64_t active, const std::string& relay, const char* program, int pid,
                  const std::function<void(int, Outcome, std::string*, std::string*)>& reply);

  // Scenarios.
  ScenarioKind PickKind();
  void Scenario(int64_t t0);
  void Inbound(int64_t t0, bool spam);
  void Outbound(int64_t t0, bool internal_only);
  void Pickup(int64_t t0);
  void Reject(int64_t t0);
  void ContentCheck(int64_t t0);
  void SaslNoise(int64_t t0);
  void ConnectionNoise(int64_t t0);

  // Made-up but plausible data.
  std::string LocalAddress();
  std::string ForeignAddress(int mta);
  std::string SpamAddress();
  int PickForeign(bool for_expiry);
  std::string PublicIp();
  std::string ClientName(const std::string& ip);
  std::string ClientMessageId(int mta, int64_t t);
  int64_t MessageSize();
  Fate LocalFate(bool allow_reject);
  Fate ForeignFate(int* defers);

  const SimulatorOptions& options_;
  SimulatorSink* sink_;
  Rng rng_;
  std::vector<Host> hosts_;
  int dmz_ = -1, mx_ = -1, out_ = -1;
  int64_t start_us_, end_us_, zone_us_;
  bool cut_;
  uint64_t seq_ = 0;
  SimulatorSummary summary_;
  std::vector<int> foreign_weights_;

  // The scenario being generated: its truth is written when it is complete.
  std::deque<Instance> instances_;
  std::vector<Link> links_;
  std::vector<External> externals_;
  // Recently allocated short queue IDs of our hosts, for foreign Postfixes to collide with.
  std::vector<std::string> recent_ids_;
  size_t recent_next_ = 0;
  std::string truth_;
};

Sim::Sim(const SimulatorOptions& options, SimulatorSink* sink, uint64_t seed)
    : options_(options),
      sink_(sink),
      rng_(seed),
      start_us_(absl::ToUnixMicros(options.start)),
      end_us_(absl::ToUnixMicros(options.start + options.duration)),
      zone_us_(absl::ToInt64Microseconds(options.zone_offset)),
      cut_(options.cut_at_end) {
  std::vector<SimHostOptions> list = options.hosts.empty() ? DefaultSimHosts() : options.hosts;
  for (size_t i = 0; i < list.size(); ++i) {
    Host h;
    h.opt = list[i];
    h.index = static_cast<int>(i);
    h.skew_us = absl::ToInt64Microseconds(list[i].skew);
    if (h.opt.name == "dmz") {
      h.role = Role::kDmz;
      h.ip = options.loopback_hosts ? "127.0.0.2" : "10.1.0.2";
      dmz_ = h.index;
    } else if (h.opt.name == "mx") {
      h.role = Role::kMx;
      h.ip = options.loopback_hosts ? "127.0.0.3" : "10.1.0.3";
      mx_ = h.index;
    } else {
      h.role = Role::kOut;
      h.ip = options.loopback_hosts ? "127.0.0.4" : "10.1.0.4";
      out_ = h.index;
    }
    h.fqdn = absl::StrCat(h.opt.name, ".", kDomain);
    h.next_pid = rng_.Range(900, 30000);
    h.qmgr_pid = NewPid(h);
    h.postscreen_pid = NewPid(h);
    h.pickup_pid = NewPid(h);
    // Inode numbers of the queue file system: a short ID is 5 hex digits of microseconds
    // and the inode in hex, so each host's IDs have their own typical length.
    h.inode = h.role == Role::kMx ? 0x1850000 + rng_.Below(0x8000) : 0x3D4000 + rng_.Below(0x4000);
    h.amavis.limit = 4;  // $max_servers
    h.amavis.max_use = 20;
    hosts_.push_back(std::move(h));
  }
  for (int i = 0; i < kForeignCount; ++i) foreign_weights_.push_back(kForeign[i].weight);
}

// ---- output -------------------------------------------------------------------------------

bool Sim::Emit(int host, int64_t t, std::string body) {
  if (cut_ && t > end_us_) return false;
  hosts_[host].pending.push(PendingLine{t, seq_++, std::move(body)});
  return true;
}

bool Sim::EmitQ(Instance* in, int64_t t, std::string body) {
  if (!Emit(in->host, t, std::move(body))) return false;
  in->first_t = std::min(in->first_t, t);
  return true;
}

int64_t Sim::WrittenUs(const Host& h, int64_t t) const {
  const int64_t w = t + h.skew_us;
  // A classic stamp keeps whole seconds only; that is all an importer can know.
  return h.opt.stamp == StampForm::kRfc3339 ? w : FloorDiv(w, kSecond) * kSecond;
}

void Sim::WriteLine(Host& h, const PendingLine& p) {
  const int64_t local = p.t + h.skew_us + zone_us_;
  const int64_t sec = FloorDiv(local, kSecond);
  if (sec != h.cached_sec) {
    h.cached_sec = sec;
    const Civil c = ToCivil(sec);
    std::string& s = h.cached_stamp;
    s.clear();
    if (h.opt.stamp == StampForm::kRfc3339) {
      AppendDigits(&s, c.year, 4);
      s.push_back('-');
      AppendDigits(&s, c.month, 2);
      s.push_back('-');
      AppendDigits(&s, c.day, 2);
      s.push_back('T');
    } else {
      s.append(kMonths[c.month - 1]);
      s.push_back(' ');
      if (c.day < 10 && h.opt.stamp == StampForm::kClassic) {
        s.push_back(' ');
        AppendDigits(&s, c.day, 1);
      } else {
        AppendDigits(&s, c.day, 2);
      }
      s.push_back(' ');
    }
    AppendDigits(&s, c.hour, 2);
    s.push_back(':');
    AppendDigits(&s, c.minute, 2);
    s.push_back(':');
    AppendDigits(&s, c.second, 2);
  }
  std::string& line = h.line;
  line.assign(h.cached_stamp);
  if (h.opt.stamp == StampForm::kRfc3339) {
    line.push_back('.');
    AppendDigits(&line, local - sec * kSecond, 6);
    const int64_t off_min = zone_us_ / kMinute;
    line.push_back(off_min < 0 ? '-' : '+');
    AppendDigits(&line, std::abs(off_min) / 60, 2);
    line.push_back(':');
    AppendDigits(&line, std::abs(off_min) % 60, 2);
  }
  line.push_back(' ');
  line.append(h.opt.name);
  line.push_back(' ');
  line.append(p.body);
  sink_->Line(h.index, line);
  ++h.lines;
}

void Sim::FlushBefore(int64_t watermark) {
  for (Host& h : hosts_) {
    while (!h.pending.empty() && h.pending.top().t < watermark) {
      WriteLine(h, h.pending.top());
      h.pending.pop();
    }
  }
}

void AppendEndpoint(std::string* out, const std::string& host, const std::string& qid,
                    int64_t first_us) {
  absl::StrAppend(out, "{\"host\":\"", host, "\",\"queue_id\":\"", qid,
                  "\",\"first_us\":", first_us, "}");
}

void Sim::WriteTruth() {
  for (const Instance& in : instances_) {
    if (in.first_t == kNever) continue;
    const Host& h = hosts_[in.host];
    truth_.clear();
    absl::StrAppend(&truth_, "{\"host\":\"", h.opt.name, "\",\"queue_id\":\"", in.queue_id,
                    "\",\"first_us\":", WrittenUs(h, in.first_t), ",\"origin\":\"", in.origin,
                    "\",\"reused\":", in.reused ? "true" : "false", ",\"message_id\":");
    AppendJsonString(&truth_, in.message_id);
    truth_.append(",\"sender\":");
    AppendJsonString(&truth_, in.sender);
    // Only when there is one, so the truth of a mix without cleanup refusals stays as it was.
    if (*in.disposition != '\0')
      absl::StrAppend(&truth_, ",\"disposition\":\"", in.disposition, "\"");
    truth_.append(",\"recipients\":[");
    for (size_t i = 0; i < in.rcpts.size(); ++i) {
      if (i > 0) truth_.push_back(',');
      truth_.append("{\"to\":");
      AppendJsonString(&truth_, in.rcpts[i].to);
      if (!in.rcpts[i].orig_to.empty()) {
        truth_.append(",\"orig_to\":");
        AppendJsonString(&truth_, in.rcpts[i].orig_to);
      }
      absl::StrAppend(&truth_, ",\"status\":\"", in.rcpts[i].status, "\"}");
    }
    truth_.append("]}");
    sink_->Truth(truth_);
    ++summary_.instances;
    if (in.reused) ++summary_.reused_queue_ids;
  }
  for (const Link& l : links_) {
    if (!l.shown || l.from->first_t == kNever || l.to->first_t == kNever) continue;
    truth_.assign("{\"link\":{\"from\":");
    AppendEndpoint(&truth_, hosts_[l.from->host].opt.name, l.from->queue_id,
                   WrittenUs(hosts_[l.from->host], l.from->first_t));
    truth_.append(",\"to\":");
    AppendEndpoint(&truth_, hosts_[l.to->host].opt.name, l.to->queue_id,
                   WrittenUs(hosts_[l.to->host], l.to->first_t));
    absl::StrAppend(&truth_, ",\"kind\":\"", l.kind, "\"}}");
    sink_->Truth(truth_);
    ++summary_.links;
    const std::string kind = l.kind;
    if (kind == "relay") ++summary_.relay_links;
    if (kind == "reinject") ++summary_.reinject_links;
    if (kind == "bounce") ++summary_.bounce_links;
  }
  for (const External& e : externals_) {
    if (e.from->first_t == kNever) continue;
    truth_.assign("{\"external\":{\"from\":");
    AppendEndpoint(&truth_, hosts_[e.from->host].opt.name, e.from->queue_id,
                   WrittenUs(hosts_[e.from->host], e.from->first_t));
    truth_.append(",\"to\":[");
    for (size_t i = 0; i < e.to.size(); ++i) {
      if (i > 0) truth_.push_back(',');
      AppendJsonString(&truth_, e.to[i]);
    }
    absl::StrAppend(&truth_, "],\"relay\":\"", e.relay, "\",\"queued_as\":\"", e.queued_as,
                    "\",\"form\":\"", FormName(e.form),
                    "\",\"collides\":", e.collides ? "true" : "false", "}}");
    sink_->Truth(truth_);
    ++summary_.externals;
    if (e.collides) ++summary_.foreign_collisions;
  }
  instances_.clear();
  links_.clear();
  externals_.clear();
}

// ---- processes and queue IDs --------------------------------------------------------------

int Sim::NewPid(Host& h) {
  h.next_pid += rng_.Range(1, 40);
  if (h.next_pid >= 4194304) h.next_pid = 300 + rng_.Range(0, 1000);  // pid_max wrapped
  return static_cast<int>(h.next_pid);
}

int Sim::Pid(Host& h, ProcessPool& pool, int64_t t, int64_t until, int* uses) {
  constexpr int64_t kMaxIdle = 100 * kSecond;
  ProcessPool::Slot* slot = nullptr;
  for (ProcessPool::Slot& s : pool.slots) {
    if (s.busy_until <= t) {
      slot = &s;
      break;
    }
  }
  if (slot == nullptr) {
    if (static_cast<int>(pool.slots.size()) < pool.limit) {
      pool.slots.push_back(ProcessPool::Slot{NewPid(h), 0, t, 0});
      slot = &pool.slots.back();
    } else {
      // Every process busy at the process limit: the connection would wait; take the one
      // that frees first (a rare, harmless overlap in the log).
      slot = &*std::min_element(pool.slots.begin(), pool.slots.end(),
                                [](const ProcessPool::Slot& a, const ProcessPool::Slot& b) {
                                  return a.busy_until < b.busy_until;
                                });
    }
  }
  if (slot->uses >= pool.max_use || t - slot->last_used > kMaxIdle) {
    slot->pid = NewPid(h);
    slot->uses = 0;
  }
  ++slot->uses;
  slot->busy_until = std::max(slot->busy_until, until);
  slot->last_used = std::max(slot->last_used, t);
  if (uses != nullptr) *uses = slot->uses;
  return slot->pid;
}

std::string Sim::Prog(const Host& h, const char* program, int pid) const {
  return absl::StrCat(program, "[", pid, "]: ");
}

std::string Sim::AllocateQueueId(Host& h, int64_t first, int64_t last, bool* reused) {
  // An ID may be taken again only once every earlier instance with it has been removed; a
  // second's gap keeps "removed" and the new first line apart on any clock.
  constexpr int64_t kReuseGap = kSecond;
  const int64_t written = first + h.skew_us;
  const int64_t secs = FloorDiv(written, kSecond);
  int64_t usec = written - secs * kSecond;
  std::string id;
  *reused = false;
  if (h.opt.long_queue_ids) {
    // enable_long_queue_ids: seconds and microseconds of the clock in base 52, 'z', inode in
    // base 51. Practically unique, so never reused deliberately.
    for (;;) {
      h.inode += 1 + rng_.Below(3);
      id = absl::StrCat(InBase(secs, 52, 6, kSafeAlphabet), InBase(usec, 52, 4, kSafeAlphabet), "z",
                        InBase(h.inode, 51, 1, kSafeAlphabet));
      auto it = h.id_busy_until.find(id);
      if (it == h.id_busy_until.end() || it->second + kReuseGap < first) break;
    }
  } else {
    // The first reuse on a host is not left to chance, so even a short run has one.
    const bool force = h.reuses == 0 && h.used_ids.size() >= 16 && options_.reuse_rate > 0;
    if (!h.reuse_next.empty() && h.id_busy_until[h.reuse_next] + kReuseGap < first) {
      id = std::move(h.reuse_next);
      h.reuse_next.clear();
    } else if (!h.used_ids.empty() && (force || rng_.Chance(options_.reuse_rate))) {
      for (int attempt = 0; attempt < 8 && id.empty(); ++attempt) {
        const std::string& candidate = h.used_ids[rng_.Below(h.used_ids.size())];
        if (h.id_busy_until[candidate] + kReuseGap < first) id = candidate;
      }
    }
    while (id.empty()) {
      h.inode += 1 + rng_.Below(3);
      std::string fresh = absl::StrCat(Hex(usec, 5), Hex(h.inode, 1));
      auto it = h.id_busy_until.find(fresh);
      if (it == h.id_busy_until.end() || it->second + kReuseGap < first) id = std::move(fresh);
      usec = (usec + 1) % kSecond;
    }
    if (recent_ids_.size() < 512) {
      recent_ids_.push_back(id);
    } else {
      recent_ids_[recent_next_++ % recent_ids_.size()] = id;
    }
  }
  auto [it, inserted] = h.id_busy_until.try_emplace(id, last);
  if (!inserted) {
    *reused = true;
    ++h.reuses;
    it->second = std::max(it->second, last);
  } else {
    h.used_ids.push_back(id);
  }
  return id;
}

std::string Sim::ForeignQueueId(Form form, int64_t t, bool* collides) {
  *collides = false;
  const int64_t secs = t / kSecond;
  switch (form) {
    case Form::kPostfix:
      // A foreign Postfix numbers its queue files just as ours do: its IDs can equal ours.
      if (!recent_ids_.empty() && rng_.Chance(options_.foreign_collision_rate)) {
        *collides = true;
        return rng_.Pick(recent_ids_);
      }
      return absl::StrCat(Hex(t % kSecond, 5), Hex(0x200000 + rng_.Below(0x600000), 1));
    case Form::kExim: {
      // Exim 4.9x: base-62 time, pid, fraction ("1tSxYz-000AbC-9Q").
      return absl::StrCat(InBase(secs, 62, 6, kAlnum), "-",
                          InBase(rng_.Range(1000, 400000), 62, 6, kAlnum), "-",
                          InBase(t % kSecond / 2000, 62, 2, kAlnum));
    }
    case Form::kGmail:
      return absl::StrCat(Lower(&rng_, 1), Digits(&rng_, 1), "si", Digits(&rng_, 7),
                          Lower(&rng_, 3), ".", rng_.Range(1, 999));
    case Form::kMicrosoft:
      return absl::StrCat(rng_.Range(1000000000000LL, 99999999999999LL));
    case Form::kSendmail: {
      // Sendmail: year, month, day, hour, minute, second in base 60, a sequence, the pid.
      const Civil c = ToCivil(secs);
      const char* b60 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx";
      std::string id;
      id.push_back(b60[c.year % 60]);
      id.push_back(b60[c.month - 1]);
      id.push_back(b60[c.day]);
      id.push_back(b60[c.hour]);
      id.push_back(b60[c.minute]);
      id.push_back(b60[c.second]);
      id.push_back(b60[rng_.Below(60)]);
      id.push_back(b60[rng_.Below(60)]);
      AppendDigits(&id, rng_.Range(1000, 999999), 6);
      return id;
    }
    case Form::kDead:
      break;
  }
  return "";
}

// ---- made-up data -------------------------------------------------------------------------

std::string Sim::LocalAddress() { return absl::StrCat(rng_.Pick(LocalUsers()), "@", kDomain); }

std::string Sim::ForeignAddress(int mta) {
  return absl::StrCat(rng_.Pick(kForeignLocalParts), "@", kForeign[mta].domain);
}

std::string Sim::SpamAddress() {
  return absl::StrCat(Lower(&rng_, rng_.Range(5, 9)), "@", Lower(&rng_, rng_.Range(6, 11)), ".",
                      rng_.Pick(kSpamTlds));
}

int Sim::PickForeign(bool for_expiry) {
  if (for_expiry) return rng_.Chance(0.5) ? kForeignCount - 1 : kForeignCount - 2;
  int total = 0;
  for (int w : foreign_weights_) total += w;
  int64_t r = rng_.Below(total);
  for (int i = 0; i < kForeignCount; ++i) {
    if (r < foreign_weights_[i]) return i;
    r -= foreign_weights_[i];
  }
  return 0;
}

std::string Sim::PublicIp() {
  for (;;) {
    const int a = static_cast<int>(rng_.Range(1, 223));
    if (a == 10 || a == 100 || a == 127 || a == 169 || a == 172 || a == 192) continue;
    return absl::StrCat(a, ".", rng_.Range(0, 255), ".", rng_.Range(0, 255), ".",
                        rng_.Range(1, 254));
  }
}

// Reverse DNS of a dial-up client, or "unknown" when it has none (or it does not verify).
std::string Sim::ClientName(const std::string& ip) {
  if (rng_.Chance(0.4)) return "unknown";
  std::string dashed = ip;
  std::replace(dashed.begin(), dashed.end(), '.', '-');
  return absl::StrCat(rng_.Chance(0.5) ? "p" : "", dashed, rng_.Pick(kIspHosts));
}

std::string Sim::ClientMessageId(int mta, int64_t t) {
  const std::string domain = mta >= 0 ? kForeign[mta].domain : kDomain;
  switch (mta >= 0 ? kForeign[mta].form : Form::kPostfix) {
    case Form::kGmail:
      return absl::StrCat("CA", Alnum(&rng_, 42), "@mail.gmail.com");
    case Form::kMicrosoft:
      return absl::StrCat("AM9PR07MB", Digits(&rng_, 4), Alnum(&rng_, 24),
                          "@AM9PR07MB7169.eurprd07.prod.outlook.com");
    default:
      break;
  }
  switch (rng_.Below(3)) {
    case 0:
      return absl::StrCat(LowerHex(&rng_, 8), "-", LowerHex(&rng_, 4), "-", LowerHex(&rng_, 4), "-",
                          LowerHex(&rng_, 4), "-", LowerHex(&rng_, 12), "@", domain);
    case 1: {
      const Civil c = ToCivil(t / kSecond);
      std::string s;
      AppendDigits(&s, c.year, 4);
      AppendDigits(&s, c.month, 2);
      AppendDigits(&s, c.day, 2);
      AppendDigits(&s, c.hour, 2);
      AppendDigits(&s, c.minute, 2);
      AppendDigits(&s, c.second, 2);
      return absl::StrCat(s, ".", Digits(&rng_, 7), "@", domain);
    }
    default:
      return absl::StrCat(Alnum(&rng_, 16), ".", Alnum(&rng_, 6), "@", domain);
  }
}

int64_t Sim::MessageSize() {
  return std::min<int64_t>(1200 + rng_.Exp(25000) + (rng_.Chance(0.05) ? rng_.Exp(2000000) : 0),
                           25000000);
}

Fate Sim::LocalFate(bool allow_reject) {
  const double r = rng_.Real();
  double acc = options_.unknown_user_rate;
  if (r < acc) return Fate::kUnknown;
  if (r < (acc += options_.defer_rate)) return Fate::kDefer;
  if (r < (acc += options_.expire_rate)) return Fate::kExpire;
  if (allow_reject && r < acc + options_.reject_rcpt_rate) return Fate::kReject;
  return Fate::kOk;
}

Fate Sim::ForeignFate(int* defers) {
  const Fate f = LocalFate(false);
  *defers = f == Fate::kDefer ? static_cast<int>(rng_.Range(1, 3)) : 0;
  return f;
}

// ---- routing ------------------------------------------------------------------------------

bool IsLocalDomain(const std::string& addr) {
  const size_t at = addr.rfind('@');
  if (at == std::string::npos) return true;
  const std::string domain = addr.substr(at + 1);
  return domain == kDomain || domain == absl::StrCat("mx.", kDomain);
}

int ForeignIndex(const std::string& addr) {
  const size_t at = addr.rfind('@');
  const std::string domain = at == std::string::npos ? "" : addr.substr(at + 1);
  for (int i = 0; i < kForeignCount; ++i) {
    if (domain == kForeign[i].domain) return i;
  }
  return -1;  // a spam domain: its MX is made up on the spot (see ExecuteGroup)
}

Dest Sim::RouteFor(const Host& h, Arrival arrival, const std::string& addr) const {
  const bool local = IsLocalDomain(addr);
  switch (h.role) {
    case Role::kDmz:
      // content_filter is set on the port-25 smtpd only: pickup, bounces and re-injected
      // mail are not filtered again.
      if (arrival == Arrival::kInternet || arrival == Arrival::kPeer) return Dest{Route::kAmavis};
      if (local) return Dest{Route::kRelay, mx_};
      if (out_ >= 0) return Dest{Route::kRelay, out_};
      return Dest{Route::kInternet, -1, ForeignIndex(addr)};
    case Role::kMx: {
      if (!local) return Dest{Route::kRelay, dmz_};
      const std::string user = addr.substr(0, addr.find('@'));
      for (const char* alias : kAliasLocalParts) {
        if (user == alias) return Dest{Route::kLocal};
      }
      return Dest{Route::kLmtp};
    }
    case Role::kOut:
      // Notices for our own senders go to example.test's MX like anyone's: the dmz.
      if (local) return Dest{Route::kRelay, dmz_};
      return Dest{Route::kInternet, -1, ForeignIndex(addr)};
  }
  return Dest{Route::kInternet};
}

// ---- one message instance -----------------------------------------------------------------

SessionTimes Sim::PlanSession(const ArrivalSpec& a, int rejects, int64_t size) {
  SessionTimes st;
  // Body transfer: a few MB/s over the internet, faster inside the site.
  const int64_t body_us =
      size *
      (a.kind == Arrival::kInternet || a.kind == Arrival::kSubmission ? rng_.Range(1, 8) : 1) / 10;
  switch (a.kind) {
    case Arrival::kInternet:
    case Arrival::kSubmission: {
      st.connect = a.begin;
      if (a.kind == Arrival::kInternet) {
        // postscreen: PASS OLD from its cache in milliseconds; PASS NEW after the greet wait.
        st.listed = st.connect + (rng_.Chance(0.85) ? rng_.Range(300, 4000)
                                                    : 6 * kSecond + rng_.Range(0, 300 * kMs));
        st.smtpd_connect = st.listed + rng_.Range(500, 4000);
      } else {
        st.smtpd_connect = st.connect;
      }
      st.tls = st.smtpd_connect + rng_.Range(20 * kMs, 150 * kMs);
      st.client = (a.tls ? st.tls : st.smtpd_connect) +
                  rng_.Range(30 * kMs, a.kind == Arrival::kSubmission ? 900 * kMs : 400 * kMs);
      int64_t t = st.client;
      for (int i = 0; i < rejects; ++i) {
        t += rng_.Range(5 * kMs, 60 * kMs);
        st.rejects.push_back(t);
      }
      st.cleanup = t + rng_.Range(30 * kMs, 300 * kMs);
      st.accept = st.cleanup + body_us + rng_.Range(5 * kMs, 60 * kMs);
      st.qmgr = st.accept + rng_.Range(200, 3000);
      st.disconnect = st.accept + rng_.Range(5 * kMs, 200 * kMs);
      break;
    }
    case Arrival::kPeer:
    case Arrival::kReinject: {
      // Inside the sender's window: connect at its start, the 250 at its end.
      const int64_t span = std::max<int64_t>(a.accept - a.begin, 2 * kMs);
      st.connect = a.begin;
      st.listed = a.begin + span / 50;
      st.smtpd_connect = a.begin + span / 20;
      st.tls = a.begin + span * 3 / 20;
      st.client = a.begin + span * 7 / 20;
      st.cleanup = a.begin + span * 12 / 20;
      st.accept = a.begin + span;
      st.qmgr = st.accept + rng_.Range(50, 250);
      st.disconnect = st.accept + rng_.Range(600, 3000);
      break;
    }
    case Arrival::kPickup:
      st.connect = st.client = a.begin;
      st.cleanup = a.begin + rng_.Range(300, 2000);
      st.accept = st.cleanup + rng_.Range(100, 1000);
      st.qmgr = st.accept + rng_.Range(300, 2000);
      break;
    case Arrival::kBounce:
      st.connect = st.client = st.cleanup = st.accept = a.begin;
      st.qmgr = a.begin + rng_.Range(200, 1200);
      break;
  }
  return st;
}

std::vector<Pass> Sim::PlanPasses(const std::vector<Accepted>& acc, int64_t arrival,
                                  int64_t first_active) {
  const int64_t lifetime = absl::ToInt64Microseconds(options_.queue_lifetime);
  std::vector<Pass> passes;
  std::vector<bool> done(acc.size(), false);
  int64_t active = first_active;
  for (int k = 0;; ++k) {
    Pass p;
    p.active = active;
    const bool last_chance = active - arrival >= lifetime;
    for (size_t i = 0; i < acc.size(); ++i) {
      if (done[i]) continue;
      auto g = std::find_if(p.groups.begin(), p.groups.end(),
                            [&](const Group& x) { return x.dest == acc[i].dest; });
      if (g == p.groups.end()) {
        p.groups.emplace_back();
        p.groups.back().dest = acc[i].dest;
        g = p.groups.end() - 1;
      }
      g->rcpts.push_back(static_cast<int>(i));
    }
    int64_t handoff = active + rng_.Range(500, 20 * kMs);
    for (Group& g : p.groups) {
      g.handoff = handoff;
      handoff += rng_.Range(100, 3000);
      const Route r = g.dest.route;
      const bool internal_hop = r == Route::kAmavis || r == Route::kRelay;
      const bool dead =
          r == Route::kInternet && g.dest.mta >= 0 && kForeign[g.dest.mta].form == Form::kDead;
      g.connect_failed =
          dead || (internal_hop && k == 0 && rng_.Chance(options_.internal_defer_rate));
      switch (r) {
        case Route::kAmavis:
          g.setup = g.handoff + rng_.Range(500, 3000);
          g.done = g.setup + 300 * kMs + rng_.Exp(900 * kMs);
          break;
        case Route::kRelay:
          g.setup = g.handoff + rng_.Range(2 * kMs, 40 * kMs);
          g.done = g.setup + 15 * kMs + rng_.Exp(40 * kMs);
          break;
        case Route::kLmtp:
          g.setup = g.handoff + rng_.Range(500, 2000);
          g.done = g.setup + rng_.Range(5 * kMs, 80 * kMs);
          break;
        case Route::kLocal:
          g.setup = g.handoff;
          g.done = g.handoff + rng_.Range(2 * kMs, 30 * kMs);
          break;
        case Route::kInternet:
          g.setup = g.handoff + rng_.Range(80 * kMs, 1500 * kMs);
          g.done = g.setup + rng_.Range(100 * kMs, 2000 * kMs);
          break;
      }
      if (g.connect_failed) {
        // Refused at once inside the site; the internet's dead host times out (30 s per MX).
        g.setup = g.done =
            g.handoff + (dead ? rng_.Range(30, 60) * kSecond : rng_.Range(1, 5) * kMs);
      }
      for (int i : g.rcpts) {
        const Rcpt& rc = acc[i].rcpt;
        Outcome o = Outcome::kSent;
        if (g.connect_failed) {
          o = Outcome::kDeferred;
        } else if (r == Route::kLocal) {
          o = Outcome::kSent;  // root's mailbox: aliases always deliver
        } else if (!internal_hop) {
          switch (rc.fate) {
            case Fate::kUnknown:
              o = Outcome::kBounced;
              break;
            case Fate::kDefer:
              o = k < rc.defers ? Outcome::kDeferred : Outcome::kSent;
              break;
            case Fate::kExpire:
              o = Outcome::kDeferred;
              break;
            default:
              break;
          }
        }
        g.outcomes.push_back(o);
        if (o != Outcome::kDeferred) done[i] = true;
        if (o == Outcome::kBounced) p.bounced_any = true;
      }
      p.end = std::max(p.end, g.done + static_cast<int64_t>(g.rcpts.size()) * 40);
    }
    const bool all_done = std::all_of(done.begin(), done.end(), [](bool b) { return b; });
    if (!all_done && last_chance) p.expire = true;
    passes.push_back(std::move(p));
    if (all_done || last_chance) break;
    // Exponential backoff between minimal_backoff_time (300 s) and maximal_backoff_time
    // (4000 s), rounded up to the next queue run (queue_run_delay 300 s).
    const int64_t backoff = std::min<int64_t>(300LL << std::min(k, 6), 4000) * kSecond;
    active = passes.back().end + backoff + rng_.Range(0, 300 * kSecond);
  }
  return passes;
}

Instance* Sim::Receive(int host, const ArrivalSpec& a, Content c, const std::vector<Rcpt>& rcpts) {
  Host& h = hosts_[host];
  instances_.emplace_back();
  Instance* in = &instances_.back();
  in->host = host;
  switch (a.kind) {
    case Arrival::kInternet:
    case Arrival::kPeer:
      in->origin = "smtpd";
      break;
    case Arrival::kSubmission:
      in->origin = "submission";
      break;
    case Arrival::kReinject:
      in->origin = "reinject";
      break;
    case Arrival::kPickup:
      in->origin = "pickup";
      break;
    case Arrival::kBounce:
      in->origin = "bounce";
      break;
  }
  in->sender = c.sender;
  in->arrival = a.kind;
  in->client_ip = a.kind == Arrival::kPeer       ? hosts_[a.peer].ip
                  : a.kind == Arrival::kReinject ? "127.0.0.1"
                                                 : a.client_ip;

  // Recipients: rejected ones stay in the truth (status "rejected") but not in the queue file.
  // The queue file exists from the first accepted RCPT on, so only later ones can be rejected
  // under this queue ID.
  std::vector<Accepted> acc;
  std::vector<bool> rejected(rcpts.size(), false);
  int rejects = 0;
  for (size_t i = 0; i < rcpts.size(); ++i) {
    const Rcpt& r = rcpts[i];
    TruthRcpt t;
    t.to = r.addr;
    if (a.kind == Arrival::kInternet && r.fate == Fate::kReject && !acc.empty()) {
      ++rejects;
      rejected[i] = true;
      in->rcpts.push_back(std::move(t));
      continue;
    }
    Accepted x;
    x.rcpt = r;
    if (x.rcpt.fate == Fate::kReject) x.rcpt.fate = Fate::kOk;
    x.dest = RouteFor(h, a.kind, r.addr);
    x.to = r.addr;
    if (x.dest.route == Route::kLocal) {
      const std::string root = absl::StrCat("root@mx.", kDomain);
      if (r.addr != root) {
        x.orig_to = r.addr;
        x.to = root;
      }
      t.to = x.to;
      t.orig_to = x.orig_to;
    }
    x.truth = static_cast<int>(in->rcpts.size());
    in->rcpts.push_back(std::move(t));
    acc.push_back(std::move(x));
  }

  const SessionTimes st = PlanSession(a, rejects, c.size);
  in->qmgr_t = st.qmgr;
  std::vector<Pass> passes = PlanPasses(acc, st.client, st.qmgr + rng_.Range(300, 20 * kMs));
  const Pass& last = passes.back();
  const bool notify_last = !c.sender.empty() && (last.bounced_any || last.expire);
  const int64_t removed = last.end + (notify_last ? 4 * kMs : rng_.Range(300, 1500));
  // The expiry logged after `removed` (seen on real hosts): the ID is busy until that line.
  const bool expiry_after_removed = options_.expiry_after_removed_rate > 0 && last.expire &&
                                    !h.opt.long_queue_ids &&
                                    rng_.Chance(options_.expiry_after_removed_rate);
  const int64_t late_expiry =
      expiry_after_removed ? removed + rng_.Range(200 * kMs, 1500 * kMs) : removed;
  in->queue_id =
      AllocateQueueId(h, st.client, expiry_after_removed ? late_expiry : removed, &in->reused);
  if (expiry_after_removed) h.reuse_next = in->queue_id;
  if (c.message_id.empty()) {
    // cleanup's own Message-ID: local date and time, queue ID, myhostname.
    const Civil cv = ToCivil(FloorDiv(st.cleanup + h.skew_us + zone_us_, kSecond));
    std::string s;
    AppendDigits(&s, cv.year, 4);
    AppendDigits(&s, cv.month, 2);
    AppendDigits(&s, cv.day, 2);
    AppendDigits(&s, cv.hour, 2);
    AppendDigits(&s, cv.minute, 2);
    AppendDigits(&s, cv.second, 2);
    c.message_id = absl::StrCat(s, ".", in->queue_id, "@", h.fqdn);
  }
  in->message_id = c.message_id;

  EmitSession(in, a, st, c, rcpts, rejected, acc);

  const int64_t arrival = st.client;
  for (size_t k = 0; k < passes.size(); ++k) {
    const Pass& p = passes[k];
    if (k > 0) {
      EmitQ(in, p.active,
            absl::StrCat(Prog(h, "postfix/qmgr", h.qmgr_pid), in->queue_id, ": from=<", c.sender,
                         ">, size=", c.size, ", nrcpt=", acc.size(), " (queue active)"));
    }
    for (const Group& g : p.groups) ExecuteGroup(in, c, acc, arrival, p, g);
    int64_t t = p.end + rng_.Range(100, 400);
    if (p.expire) {
      const int64_t expired_t = expiry_after_removed && k + 1 == passes.size() ? late_expiry : t;
      if (EmitQ(in, expired_t,
                absl::StrCat(Prog(h, "postfix/qmgr", h.qmgr_pid), in->queue_id, ": from=<",
                             c.sender, ">, status=expired, returned to sender"))) {
        for (const Accepted& x : acc) {
          TruthRcpt& tr = in->rcpts[x.truth];
          if (std::string(tr.status) == "deferred" || std::string(tr.status) == "queued") {
            tr.status = "expired";
          }
        }
        ++summary_.expired;
      }
    }
    if (!c.sender.empty() && (p.bounced_any || p.expire)) Notify(in, t + rng_.Range(100, 500));
  }
  EmitQ(in, removed, absl::StrCat(Prog(h, "postfix/qmgr", h.qmgr_pid), in->queue_id, ": removed"));
  return in;
}

void Sim::EmitSession(Instance* in, const ArrivalSpec& a, const SessionTimes& st, const Content& c,
                      const std::vector<Rcpt>& rcpts, const std::vector<bool>& rejected,
                      const std::vector<Accepted>& acc) {
  Host& h = hosts_[in->host];
  const std::string& qid = in->queue_id;
  const int cleanup_pid = Pid(h, h.cleanup, st.client, st.accept);
  if (a.kind == Arrival::kPickup) {
    EmitQ(in, st.client,
          absl::StrCat(Prog(h, "postfix/pickup", h.pickup_pid), qid, ": uid=", a.uid, " from=<",
                       a.pickup_from, ">"));
  }
  if (a.kind != Arrival::kPickup && a.kind != Arrival::kBounce) {
    // An SMTP session: which smtpd service, who connects, and through postscreen or not.
    std::string client_host = a.client_host, client_ip = a.client_ip;
    int port = a.client_port;
    if (a.kind == Arrival::kPeer) {
      client_host = hosts_[a.peer].fqdn;
      client_ip = hosts_[a.peer].ip;
      port = static_cast<int>(rng_.Range(32768, 60999));
    } else if (a.kind == Arrival::kReinject) {
      client_host = "localhost";
      client_ip = "127.0.0.1";
    }
    const std::string client = absl::StrCat(client_host, "[", client_ip, "]");
    const char* program = a.kind == Arrival::kSubmission ? "postfix/submission/smtpd"
                          : a.kind == Arrival::kReinject ? "postfix/10025/smtpd"
                                                         : "postfix/smtpd";
    ProcessPool& pool = a.kind == Arrival::kSubmission ? h.submission
                        : a.kind == Arrival::kReinject ? h.reinject
                                                       : h.smtpd;
    const int pid = Pid(h, pool, st.smtpd_connect, st.disconnect);
    const std::string prog = Prog(h, program, pid);
    if (h.role == Role::kDmz && (a.kind == Arrival::kInternet || a.kind == Arrival::kPeer)) {
      const std::string ps = Prog(h, "postfix/postscreen", h.postscreen_pid);
      const std::string remote = absl::StrCat("[", client_ip, "]:", port);
      Emit(in->host, st.connect,
           absl::StrCat(ps, "CONNECT from ", remote, " to [",
                        a.kind == Arrival::kPeer ? h.ip : kDmzPublicIp, "]:25"));
      const bool is_new = st.listed - st.connect > 5 * kSecond;
      Emit(in->host, st.listed,
           absl::StrCat(ps,
                        a.kind == Arrival::kPeer ? "ALLOWLISTED "
                        : is_new                 ? "PASS NEW "
                                                 : "PASS OLD ",
                        remote));
    }
    Emit(in->host, st.smtpd_connect, absl::StrCat(prog, "connect from ", client));
    if (a.tls) {
      Emit(in->host, st.tls,
           absl::StrCat(prog, "Anonymous TLS connection established from ", client, ": ",
                        rng_.Chance(0.8) ? kTls13 : kTls12));
    }
    std::string line = absl::StrCat(prog, qid, ": client=", client);
    if (a.kind == Arrival::kSubmission) {
      absl::StrAppend(&line, ", sasl_method=", rng_.Chance(0.7) ? "PLAIN" : "LOGIN",
                      ", sasl_username=", a.sasl_user);
    }
    EmitQ(in, st.client, std::move(line));
    size_t reject_i = 0;
    for (size_t i = 0; i < rcpts.size(); ++i) {
      if (rejected[i]) {
        const bool shown = EmitQ(
            in, st.rejects[reject_i++],
            absl::StrCat(prog, qid, ": reject: RCPT from ", client, ": 550 5.1.1 <", rcpts[i].addr,
                         ">: Recipient address rejected: User unknown in relay recipient table; "
                         "from=<",
                         c.sender, "> to=<", rcpts[i].addr, "> proto=ESMTP helo=<", a.helo, ">"));
        if (shown) in->rcpts[i].status = "rejected";
      }
    }
    EmitQ(in, st.cleanup,
          absl::StrCat(Prog(h, "postfix/cleanup", cleanup_pid), qid, ": message-id=<", c.message_id,
                       ">"));
    // Postfix 3 counts commands: accepted/issued where some failed.
    const int total = static_cast<int>(rcpts.size());
    const int ok = static_cast<int>(acc.size());
    const int ehlo = a.tls ? 2 : 1;
    int good = ehlo + 1 + ok + 1 + 1;
    int all = ehlo + 1 + total + 1 + 1;
    std::string counts = absl::StrCat("ehlo=", ehlo);
    if (a.tls) {
      counts.append(" starttls=1");
      ++good;
      ++all;
    }
    if (a.kind == Arrival::kSubmission) {
      counts.append(" auth=1");
      ++good;
      ++all;
    }
    absl::StrAppend(&counts, " mail=1 rcpt=", ok);
    if (ok != total) absl::StrAppend(&counts, "/", total);
    absl::StrAppend(&counts, " data=1 quit=1 commands=", good);
    if (good != all) absl::StrAppend(&counts, "/", all);
    Emit(in->host, st.disconnect, absl::StrCat(prog, "disconnect from ", client, " ", counts));
  } else {
    EmitQ(in, st.cleanup,
          absl::StrCat(Prog(h, "postfix/cleanup", cleanup_pid), qid, ": message-id=<", c.message_id,
                       ">"));
  }
  EmitQ(in, st.qmgr,
        absl::StrCat(Prog(h, "postfix/qmgr", h.qmgr_pid), qid, ": from=<", c.sender,
                     ">, size=", c.size, ", nrcpt=", acc.size(), " (queue active)"));
}

// Writes one delivery line per recipient of `g`; `reply` fills in dsn and the text in
// parentheses for recipient number i with outcome o.
void Sim::Deliveries(Instance* in, const std::vector<Accepted>& acc, const Group& g,
                     int64_t arrival, int64_t active, const std::string& relay, const char* program,
                     int pid,
                     const std::function<void(int, Outcome, std::string*, std::string*)>& reply) {
  const Host& h = hosts_[in->host];
  const std::string prog = Prog(h, program, pid);
  for (size_t n = 0; n < g.rcpts.size(); ++n) {
    const int i = g.rcpts[n];
    const Outcome o = g.outcomes[n];
    const int64_t t = g.done + static_cast<int64_t>(n) * 40;
    std::string dsn, text;
    reply(i, o, &dsn, &text);
    std::string line = absl::StrCat(prog, in->queue_id, ": to=<", acc[i].to, ">");
    if (!acc[i].orig_to.empty()) absl::StrAppend(&line, ", orig_to=<", acc[i].orig_to, ">");
    absl::StrAppend(&line, ", relay=", relay, ", delay=");
    AppendDelay(&line, t - arrival);
    line.append(", delays=");
    AppendDelay(&line, active - arrival);
    line.push_back('/');
    AppendDelay(&line, g.handoff - active);
    line.push_back('/');
    AppendDelay(&line, g.setup - g.handoff);
    line.push_back('/');
    AppendDelay(&line, t - g.setup);
    const char* status = o == Outcome::kSent      ? "sent"
                         : o == Outcome::kBounced ? "bounced"
                                                  : "deferred";
    absl::StrAppend(&line, ", dsn=", dsn, ", status=", status, " (", text, ")");
    if (EmitQ(in, t, std::move(line))) in->rcpts[acc[i].truth].status = status;
  }
}

void Sim::ExecuteGroup(Instance* in, const Content& c, const std::vector<Accepted>& acc,
                       int64_t arrival, const Pass& pass, const Group& g) {
  Host& h = hosts_[in->host];
  const int64_t accept = g.done - 500;  // the next hop's 250, just before we log it
  std::vector<Rcpt> subset;
  for (int i : g.rcpts) subset.push_back(acc[i].rcpt);

  auto refused = [&](const std::string& target, const char* why) {
    return [target, why](int, Outcome, std::string* dsn, std::string* text) {
      *dsn = "4.4.1";
      *text = absl::StrCat("connect to ", target, ": ", why);
    };
  };

  switch (g.dest.route) {
    case Route::kAmavis: {
      const int pid = Pid(h, h.amavis_smtp, g.handoff, g.done);
      if (g.connect_failed) {
        Deliveries(in, acc, g, arrival, pass.active, "none", "postfix/amavis/smtp", pid,
                   refused("127.0.0.1[127.0.0.1]:10024", "Connection refused"));
        return;
      }
      int uses = 0;
      const int apid = Pid(h, h.amavis, g.setup, g.done, &uses);
      std::string log_id = absl::StrCat("(", apid, "-");
      AppendDigits(&log_id, uses, 2);
      log_id.append(")");
      const bool from_peer = in->arrival == Arrival::kPeer;
      std::string rcpt_list;
      for (size_t n = 0; n < subset.size(); ++n) {
        absl::StrAppend(&rcpt_list, n > 0 ? "," : "", "<", subset[n].addr, ">");
      }
      // amavis names the connecting client, then the original one from the Received: chain
      // when there is one (not for pickup mail or bounces).
      const std::string who =
          absl::StrCat("[", in->client_ip, "]:", rng_.Range(32768, 60999),
                       c.origin_ip.empty() ? "" : absl::StrCat(" [", c.origin_ip, "]"), " <",
                       c.sender, "> -> ", rcpt_list);
      const std::string mail_id = absl::StrCat(Alnum(&rng_, 12));
      if (c.spam) {
        Emit(in->host, g.done - 300,
             absl::StrCat("amavis[", apid, "]: ", log_id,
                          " Blocked SPAM {DiscardedInbound,Quarantined}, ", who,
                          ", quarantine: spam-", mail_id, ".gz, Queue-ID: ", in->queue_id,
                          ", Message-ID: <", c.message_id, ">, mail_id: ", mail_id,
                          ", Hits: ", rng_.Range(8, 40), ".", Digits(&rng_, 3), ", size: ", c.size,
                          ", ", rng_.Range(300, 4000), " ms"));
        Deliveries(
            in, acc, g, arrival, pass.active, "127.0.0.1[127.0.0.1]:10024", "postfix/amavis/smtp",
            pid, [&](int, Outcome, std::string* dsn, std::string* text) {
              *dsn = "2.7.0";
              *text = absl::StrCat(
                  "250 2.7.0 Ok, discarded, id=", log_id.substr(1, log_id.size() - 2), " - spam");
            });
        return;
      }
      ArrivalSpec spec;
      spec.kind = Arrival::kReinject;
      spec.begin = std::max(g.setup, accept - std::min<int64_t>(60 * kMs, (accept - g.setup) / 3));
      spec.accept = accept;
      Content next = c;
      next.size = c.size + rng_.Range(700, 1200);  // X-Virus-Scanned, X-Spam-* headers
      const Instance* q2 = Receive(in->host, spec, next, subset);
      const std::string hits =
          rng_.Chance(0.1)
              ? "-"
              : absl::StrCat(rng_.Chance(0.3) ? "-" : "", rng_.Range(0, 4), ".", Digits(&rng_, 3));
      Emit(in->host, accept + 300,
           absl::StrCat("amavis[", apid, "]: ", log_id, " Passed CLEAN {",
                        from_peer ? "RelayedOutbound" : "RelayedInbound", "}, ", who,
                        ", Queue-ID: ", in->queue_id, ", Message-ID: <", c.message_id,
                        ">, mail_id: ", mail_id, ", Hits: ", hits, ", size: ", c.size,
                        ", queued_as: ", q2->queue_id, ", ", (g.done - g.setup) / kMs, " ms"));
      // The option's plain replies (and only with it: default runs keep their bytes).
      const bool plain = options_.loopback_hosts && rng_.Chance(0.5);
      Deliveries(in, acc, g, arrival, pass.active, "127.0.0.1[127.0.0.1]:10024",
                 "postfix/amavis/smtp", pid,
                 [&](int, Outcome, std::string* dsn, std::string* text) {
                   *dsn = "2.0.0";
                   *text = absl::StrCat(plain ? "" : "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): ",
                                        "250 2.0.0 Ok: queued as ", q2->queue_id);
                 });
      links_.push_back(
          Link{in, q2, "reinject", in->rcpts[acc[g.rcpts[0]].truth].status == std::string("sent")});
      return;
    }
    case Route::kRelay: {
      const Host& peer = hosts_[g.dest.peer];
      // dmz reaches mx through the transport map's "relay" service; everything else through
      // the plain smtp service (relayhost).
      const bool relay_service = h.role == Role::kDmz && peer.role == Role::kMx;
      const char* program = relay_service ? "postfix/relay/smtp" : "postfix/smtp";
      const int pid = Pid(h, relay_service ? h.relay : h.smtp, g.handoff, g.done);
      const std::string target = absl::StrCat(peer.fqdn, "[", peer.ip, "]:25");
      if (g.connect_failed) {
        Deliveries(in, acc, g, arrival, pass.active, "none", program, pid,
                   refused(target, "Connection refused"));
        return;
      }
      ArrivalSpec spec;
      spec.kind = Arrival::kPeer;
      spec.peer = in->host;
      spec.begin = g.setup;
      spec.accept = accept;
      spec.tls = rng_.Chance(0.8);
      if (spec.tls) {
        Emit(in->host, g.setup - rng_.Range(100, 1000),
             absl::StrCat(Prog(h, program, pid), "Untrusted TLS connection established to ", target,
                          ": ", kTls13));
      }
      Content next = c;
      next.size = c.size + rng_.Range(350, 700);  // our Received: header
      const Instance* q = Receive(g.dest.peer, spec, next, subset);
      Deliveries(in, acc, g, arrival, pass.active, target, program, pid,
                 [&](int, Outcome, std::string* dsn, std::string* text) {
                   *dsn = "2.0.0";
                   *text = absl::StrCat("250 2.0.0 Ok: queued as ", q->queue_id);
                 });
      links_.push_back(
          Link{in, q, "relay", in->rcpts[acc[g.rcpts[0]].truth].status == std::string("sent")});
      return;
    }
    case Route::kLmtp: {
      const int pid = Pid(h, h.lmtp, g.handoff, g.done);
      const std::string relay = absl::StrCat(h.fqdn, "[private/dovecot-lmtp]");
      std::vector<std::string> sessions;
      const int dpid = Pid(h, h.dovecot, g.setup, g.done);
      for (size_t n = 0; n < g.rcpts.size(); ++n) {
        sessions.push_back(Alnum(&rng_, 22));
        if (options_.dovecot_lines && g.outcomes[n] == Outcome::kSent) {
          Emit(in->host, g.done - 400 + static_cast<int64_t>(n) * 40,
               absl::StrCat("dovecot: lmtp(", acc[g.rcpts[n]].to, ")<", dpid, "><", sessions[n],
                            ">: msgid=<", c.message_id, ">: saved mail to INBOX"));
        }
      }
      int n_seen = 0;
      Deliveries(in, acc, g, arrival, pass.active, relay, "postfix/lmtp", pid,
                 [&](int i, Outcome o, std::string* dsn, std::string* text) {
                   const std::string& to = acc[i].to;
                   const int n = n_seen++;
                   if (o == Outcome::kSent) {
                     *dsn = "2.0.0";
                     *text = absl::StrCat("250 2.0.0 <", to, "> ", sessions[n], " Saved");
                   } else if (o == Outcome::kBounced) {
                     *dsn = "5.1.1";
                     *text = absl::StrCat("host ", relay, " said: 550 5.1.1 <", to,
                                          "> User doesn't exist: ", to,
                                          " (in reply to RCPT TO command)");
                   } else {
                     *dsn = "4.2.2";
                     *text = absl::StrCat("host ", relay, " said: 452 4.2.2 <", to,
                                          "> Quota exceeded (mailbox for user is full) (in "
                                          "reply to end of DATA command)");
                   }
                 });
      return;
    }
    case Route::kLocal: {
      const int pid = Pid(h, h.local, g.handoff, g.done);
      const bool command = rng_.Chance(0.3);
      Deliveries(in, acc, g, arrival, pass.active, "local", "postfix/local", pid,
                 [&](int, Outcome, std::string* dsn, std::string* text) {
                   *dsn = "2.0.0";
                   *text = command ? "delivered to command: /usr/lib/dovecot/deliver"
                                   : "delivered to mailbox";
                 });
      return;
    }
    case Route::kInternet: {
      const int pid = Pid(h, h.smtp, g.handoff, g.done);
      const int m = g.dest.mta;
      std::string mx;
      Form form;
      if (m >= 0 && options_.loopback_hosts &&
          kForeign[m].domain == std::string_view("partner.test")) {
        mx = absl::StrCat(kForeign[m].mx, "[", kLoopbackForeignIp, "]");
        form = kForeign[m].form;
      } else if (m >= 0) {
        mx = absl::StrCat(kForeign[m].mx, "[", kForeign[m].mx_net, ".", rng_.Range(2, 250), "]");
        form = kForeign[m].form;
      } else {
        // A spam domain answering a bounce: some small host that runs Postfix.
        const std::string& to = acc[g.rcpts[0]].to;
        mx = absl::StrCat("mx.", to.substr(to.find('@') + 1), "[", PublicIp(), "]");
        form = Form::kPostfix;
      }
      const std::string relay = absl::StrCat(mx, ":25");
      if (g.connect_failed) {
        Deliveries(in, acc, g, arrival, pass.active, "none", "postfix/smtp", pid,
                   refused(relay, "Connection timed out"));
        return;
      }
      if (rng_.Chance(0.75)) {
        Emit(
            in->host, g.setup - rng_.Range(100, 2000),
            absl::StrCat(Prog(h, "postfix/smtp", pid),
                         form == Form::kMicrosoft || form == Form::kGmail ? "Trusted" : "Untrusted",
                         " TLS connection established to ", relay, ": ", kTls13));
      }
      bool collides = false, ignored = false;
      const std::string foreign_id = ForeignQueueId(form, g.done, &collides);
      Deliveries(
          in, acc, g, arrival, pass.active, relay, "postfix/smtp", pid,
          [&](int i, Outcome o, std::string* dsn, std::string* text) {
            const std::string& to = acc[i].to;
            const std::string said = absl::StrCat("host ", mx, " said: ");
            if (o == Outcome::kSent) {
              *dsn = form == Form::kMicrosoft ? "2.6.0" : "2.0.0";
              switch (form) {
                case Form::kPostfix:
                  *text = absl::StrCat("250 2.0.0 Ok: queued as ", foreign_id);
                  break;
                case Form::kExim:
                  *text = absl::StrCat("250 OK id=", foreign_id);
                  break;
                case Form::kGmail:
                  *text =
                      absl::StrCat("250 2.0.0 OK  ", g.done / kSecond, " ", foreign_id, " - gsmtp");
                  break;
                case Form::kMicrosoft:
                  *text =
                      absl::StrCat("250 2.6.0 <", c.message_id, "> [InternalId=", foreign_id,
                                   ", Hostname=AM9PR07MB7169.eurprd07.prod.outlook.com] ", c.size,
                                   " bytes in 0.", Digits(&rng_, 3), ", ", rng_.Range(20, 900), ".",
                                   Digits(&rng_, 3), " KB/sec Queued mail for delivery");
                  break;
                case Form::kSendmail:
                  *text = absl::StrCat("250 2.0.0 ", foreign_id, " Message accepted for delivery");
                  break;
                case Form::kDead:
                  break;
              }
            } else if (o == Outcome::kBounced) {
              *dsn = "5.1.1";
              switch (form) {
                case Form::kGmail:
                  *text = absl::StrCat(said,
                                       "550-5.1.1 The email account that you tried to reach does "
                                       "not exist. Please try 550-5.1.1 double-checking the "
                                       "recipient's email address for typos or 550-5.1.1 "
                                       "unnecessary spaces. 550 5.1.1  "
                                       "https://support.google.com/mail/?p=NoSuchUser ",
                                       ForeignQueueId(Form::kGmail, g.done, &ignored),
                                       " - gsmtp (in reply to RCPT TO command)");
                  break;
                case Form::kMicrosoft:
                  *dsn = "5.4.1";
                  *text = absl::StrCat(said,
                                       "550 5.4.1 Recipient address rejected: Access denied. "
                                       "[AM4PEPF00027A5F.eurprd04.prod.outlook.com] (in reply to "
                                       "RCPT TO command)");
                  break;
                case Form::kExim:
                  *text =
                      absl::StrCat(said, "550 Unrouteable address (in reply to RCPT TO command)");
                  break;
                case Form::kSendmail:
                  *text = absl::StrCat(said, "550 5.1.1 <", to,
                                       ">... User unknown (in reply to RCPT TO command)");
                  break;
                default:
                  *text = absl::StrCat(said, "550 5.1.1 <", to,
                                       ">: Recipient address rejected: User unknown in virtual "
                                       "mailbox table (in reply to RCPT TO command)");
              }
            } else {
              *dsn = "4.7.1";
              switch (form) {
                case Form::kGmail:
                  *dsn = "4.7.28";
                  *text = absl::StrCat(said,
                                       "421-4.7.28 Our system has detected an unusual rate of "
                                       "unsolicited mail. 421 4.7.28 To protect our users, mail "
                                       "has been temporarily rate limited. ",
                                       ForeignQueueId(Form::kGmail, g.done, &ignored),
                                       " - gsmtp (in reply to end of DATA command)");
                  break;
                case Form::kMicrosoft:
                  *dsn = "4.7.500";
                  *text =
                      absl::StrCat(said, "451 4.7.500 Server busy. Please try again later from [",
                                   kDmzPublicIp, "]. (S77714) (in reply to RCPT TO command)");
                  break;
                default:
                  *text = absl::StrCat(said, "450 4.7.1 <", to,
                                       ">: Recipient address rejected: Greylisted, see "
                                       "https://postgrey.schweikert.ch/help/",
                                       to.substr(to.find('@') + 1),
                                       ".html (in reply to RCPT TO command)");
              }
            }
          });
      External e{in, {}, kForeign[std::max(m, 0)].mx, foreign_id, form, false};
      if (m < 0) e.relay = mx.substr(0, mx.find('['));
      for (size_t n = 0; n < g.rcpts.size(); ++n) {
        if (g.outcomes[n] == Outcome::kSent &&
            in->rcpts[acc[g.rcpts[n]].truth].status == std::string("sent")) {
          e.to.push_back(acc[g.rcpts[n]].to);
        }
      }
      if (!e.to.empty()) {
        e.collides = collides;
        externals_.push_back(std::move(e));
      }
      return;
    }
  }
}

// The non-delivery notice: a new message from MAILER-DAEMON (null sender) to the original
// sender, queued on the same host; the bounce daemon names both queue IDs.
void Sim::Notify(Instance* in, int64_t t) {
  Host& h = hosts_[in->host];
  ArrivalSpec spec;
  spec.kind = Arrival::kBounce;
  spec.begin = t;
  Content c;
  c.size = rng_.Range(2400, 7000);
  Rcpt r;
  r.addr = in->sender;
  const Instance* notice = Receive(in->host, spec, c, {r});
  const int pid = Pid(h, h.bounce, t, notice->qmgr_t + kMs);
  const bool shown = EmitQ(in, notice->qmgr_t + rng_.Range(100, 400),
                           absl::StrCat(Prog(h, "postfix/bounce", pid), in->queue_id,
                                        ": sender non-delivery notification: ", notice->queue_id));
  links_.push_back(Link{in, notice, "bounce", shown});
}

// ---- scenarios ----------------------------------------------------------------------------

ScenarioKind Sim::PickKind() {
  const TrafficMix& m = options_.mix;
  const double w[] = {m.inbound, m.outbound,   m.internal,         m.pickup,       m.spam,
                      m.reject,  m.sasl_noise, m.connection_noise, m.content_check};
  double total = 0;
  for (double x : w) total += std::max(0.0, x);
  double r = rng_.Real() * total;
  for (int i = 0; i < 9; ++i) {
    r -= std::max(0.0, w[i]);
    if (r < 0) return static_cast<ScenarioKind>(i);
  }
  return ScenarioKind::kInbound;
}

void Sim::Scenario(int64_t t0) {
  switch (PickKind()) {
    case ScenarioKind::kInbound:
      Inbound(t0, false);
      break;
    case ScenarioKind::kSpam:
      Inbound(t0, true);
      break;
    case ScenarioKind::kOutbound:
      Outbound(t0, false);
      break;
    case ScenarioKind::kInternal:
      Outbound(t0, true);
      break;
    case ScenarioKind::kPickup:
      Pickup(t0);
      break;
    case ScenarioKind::kReject:
      Reject(t0);
      break;
    case ScenarioKind::kSasl:
      SaslNoise(t0);
      break;
    case ScenarioKind::kNoise:
      ConnectionNoise(t0);
      break;
    case ScenarioKind::kContentCheck:
      ContentCheck(t0);
      break;
  }
  ++summary_.scenarios;
}

int RecipientCount(Rng* rng) {
  const double r = rng->Real();
  if (r < 0.72) return 1;
  if (r < 0.87) return 2;
  if (r < 0.94) return 3;
  return static_cast<int>(rng->Range(4, 8));
}

void Sim::Inbound(int64_t t0, bool spam) {
  ArrivalSpec a;
  a.kind = Arrival::kInternet;
  a.begin = t0;
  a.client_port = static_cast<int>(rng_.Range(1024, 65535));
  Content c;
  int mta = -1;
  if (spam || rng_.Chance(0.1)) {
    a.client_ip = PublicIp();
    a.client_host = ClientName(a.client_ip);
    c.sender = SpamAddress();
    a.helo = a.client_host == "unknown" ? absl::StrCat("[", a.client_ip, "]") : a.client_host;
  } else {
    mta = PickForeign(false);
    const Foreign& f = kForeign[mta];
    const int octet = static_cast<int>(rng_.Range(2, 250));
    a.client_ip = absl::StrCat(f.out_net, ".", octet);
    a.client_host = *f.out_post ? absl::StrCat(f.out_pre, octet, f.out_post) : f.out_pre;
    a.helo = a.client_host;
    c.sender = rng_.Chance(0.03) ? "" : ForeignAddress(mta);
  }
  a.tls = rng_.Chance(0.6);
  c.message_id = ClientMessageId(mta, t0);
  c.size = MessageSize();
  c.spam = spam;
  c.origin_ip = a.client_ip;
  std::vector<Rcpt> rcpts;
  const int n = spam ? 1 : RecipientCount(&rng_);
  for (int i = 0; i < n; ++i) {
    Rcpt r;
    if (rng_.Chance(0.03)) {
      r.addr = absl::StrCat(rng_.Pick(kAliasLocalParts), "@", kDomain);
    } else if (rng_.Chance(options_.unknown_user_rate)) {
      r.addr = absl::StrCat(rng_.Pick(kUnknownLocalParts), "@", kDomain);
      r.fate = Fate::kUnknown;
    } else {
      r.addr = LocalAddress();
      r.fate = LocalFate(i > 0);
      if (r.fate == Fate::kDefer) r.defers = static_cast<int>(rng_.Range(1, 3));
      if (r.fate == Fate::kUnknown) r.fate = Fate::kOk;  // an unknown user has its own address
    }
    if (std::any_of(rcpts.begin(), rcpts.end(), [&](const Rcpt& x) { return x.addr == r.addr; })) {
      continue;
    }
    rcpts.push_back(std::move(r));
  }
  Receive(dmz_, a, std::move(c), rcpts);
}

void Sim::Outbound(int64_t t0, bool internal_only) {
  ArrivalSpec a;
  a.kind = Arrival::kSubmission;
  a.begin = t0;
  a.client_ip = PublicIp();
  a.client_host = ClientName(a.client_ip);
  a.client_port = static_cast<int>(rng_.Range(1024, 65535));
  a.tls = true;  // submission requires STARTTLS before AUTH
  Content c;
  c.sender = LocalAddress();
  a.sasl_user = c.sender;
  c.message_id = ClientMessageId(-1, t0);
  c.size = MessageSize();
  c.origin_ip = a.client_ip;
  std::vector<Rcpt> rcpts;
  const int n = RecipientCount(&rng_);
  for (int i = 0; i < n; ++i) {
    Rcpt r;
    if (internal_only || rng_.Chance(0.15)) {
      r.addr = LocalAddress();
      r.fate = LocalFate(false);
      if (r.fate == Fate::kUnknown)
        r.addr = absl::StrCat(rng_.Pick(kUnknownLocalParts), "@", kDomain);
      if (r.fate == Fate::kDefer) r.defers = static_cast<int>(rng_.Range(1, 3));
    } else {
      r.fate = ForeignFate(&r.defers);
      r.addr = ForeignAddress(PickForeign(r.fate == Fate::kExpire));
    }
    if (r.addr == c.sender ||
        std::any_of(rcpts.begin(), rcpts.end(), [&](const Rcpt& x) { return x.addr == r.addr; })) {
      continue;
    }
    rcpts.push_back(std::move(r));
  }
  if (rcpts.empty()) return;
  Receive(mx_, a, std::move(c), rcpts);
}

void Sim::Pickup(int64_t t0) {
  const int host = rng_.Chance(0.6) ? mx_ : dmz_;
  const Host& h = hosts_[host];
  ArrivalSpec a;
  a.kind = Arrival::kPickup;
  a.begin = t0;
  Content c;
  if (rng_.Chance(0.7)) {
    a.uid = 0;
    a.pickup_from = "root";
    c.sender = absl::StrCat("root@", h.fqdn);
  } else {
    a.uid = static_cast<int>(rng_.Range(1000, 1040));
    a.pickup_from = rng_.Pick(LocalUsers());
    c.sender = absl::StrCat(a.pickup_from, "@", h.fqdn);
  }
  c.size = rng_.Range(500, 12000);
  Rcpt r;
  const double x = rng_.Real();
  if (host == mx_ && x < 0.5) {
    r.addr = absl::StrCat("root@mx.", kDomain);  // cron's report to root: local(8)
  } else if (x < 0.8) {
    r.addr = absl::StrCat(rng_.Chance(0.5) ? "postmaster" : rng_.Pick(LocalUsers()), "@", kDomain);
  } else {
    r.addr = ForeignAddress(PickForeign(false));
  }
  Receive(host, a, std::move(c), {r});
}

void Sim::Reject(int64_t t0) {
  Host& h = hosts_[dmz_];
  const std::string ip = PublicIp();
  const int port = static_cast<int>(rng_.Range(1024, 65535));
  const std::string remote = absl::StrCat("[", ip, "]:", port);
  const std::string ps = Prog(h, "postfix/postscreen", h.postscreen_pid);
  const std::string sender = rng_.Chance(0.2) ? "" : SpamAddress();
  const std::string helo = rng_.Chance(0.3) ? absl::StrCat("[", ip, "]") : Lower(&rng_, 8) + ".com";
  std::string rcpt = LocalAddress();
  Emit(dmz_, t0, absl::StrCat(ps, "CONNECT from ", remote, " to [", kDmzPublicIp, "]:25"));
  ++summary_.noqueue_rejects;
  if (rng_.Chance(0.35)) {
    // postscreen's DNSBL verdict: it talks SMTP itself only to reject and log the envelope.
    const int64_t t = t0 + rng_.Range(50 * kMs, 400 * kMs);
    Emit(dmz_, t, absl::StrCat(ps, "DNSBL rank ", rng_.Range(3, 9), " for ", remote));
    const int64_t r = t + rng_.Range(1, 8) * kSecond;
    Emit(dmz_, r,
         absl::StrCat(ps, "NOQUEUE: reject: RCPT from ", remote,
                      ": 550 5.7.1 Service unavailable; client [", ip,
                      "] blocked using zen.spamhaus.org; from=<", sender, ">, to=<", rcpt,
                      ">, proto=ESMTP, helo=<", helo, ">"));
    Emit(dmz_, r + rng_.Range(1 * kMs, 500 * kMs), absl::StrCat(ps, "DISCONNECT ", remote));
    return;
  }
  const int64_t t1 = t0 + rng_.Range(300, 4000);
  Emit(dmz_, t1, absl::StrCat(ps, "PASS OLD ", remote));
  const std::string host_name = ClientName(ip);
  const std::string client = absl::StrCat(host_name, "[", ip, "]");
  const int64_t t2 = t1 + rng_.Range(500, 4000);
  const int64_t t3 = t2 + rng_.Range(100 * kMs, 2 * kSecond);
  const int64_t t4 = t3 + rng_.Range(20 * kMs, 2 * kSecond);
  const int pid = Pid(h, h.smtpd, t2, t4);
  const std::string prog = Prog(h, "postfix/smtpd", pid);
  Emit(dmz_, t2, absl::StrCat(prog, "connect from ", client));
  std::string reason;
  switch (rng_.Below(6)) {
    case 0:
      rcpt = ForeignAddress(PickForeign(false));
      reason = absl::StrCat("554 5.7.1 <", rcpt, ">: Relay access denied");
      break;
    case 1:
      rcpt = absl::StrCat(rng_.Pick(kUnknownLocalParts), "@", kDomain);
      reason = absl::StrCat("550 5.1.1 <", rcpt,
                            ">: Recipient address rejected: User unknown in relay recipient table");
      break;
    case 2:
      reason =
          absl::StrCat("554 5.7.1 Service unavailable; Client host [", ip,
                       "] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/", ip);
      break;
    case 3:
      reason = absl::StrCat("450 4.1.8 <", sender.empty() ? "x@nxdomain.test" : sender,
                            ">: Sender address rejected: Domain not found");
      break;
    case 4:
      reason =
          absl::StrCat("450 4.7.25 Client host rejected: cannot find your hostname, [", ip, "]");
      break;
    default:
      reason = absl::StrCat("504 5.5.2 <", helo,
                            ">: Helo command rejected: need fully-qualified "
                            "hostname");
      break;
  }
  Emit(dmz_, t3,
       absl::StrCat(prog, "NOQUEUE: reject: RCPT from ", client, ": ", reason, "; from=<", sender,
                    "> to=<", rcpt, "> proto=ESMTP helo=<", helo, ">"));
  Emit(dmz_, t4,
       absl::StrCat(prog, "disconnect from ", client,
                    rng_.Chance(0.5) ? " ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"
                                     : " ehlo=1 mail=1 rcpt=0/1 rset=1 quit=1 commands=4/5"));
}

// A message refused at the end of DATA by cleanup: a header or body check (REJECT or
// DISCARD) or a milter. cleanup logs the verdict with the envelope and removes the queue file
// itself; no queue manager ever sees it and nothing logs `removed`.
void Sim::ContentCheck(int64_t t0) {
  Host& h = hosts_[dmz_];
  const std::string ip = PublicIp();
  const int port = static_cast<int>(rng_.Range(1024, 65535));
  const std::string remote = absl::StrCat("[", ip, "]:", port);
  const std::string ps = Prog(h, "postfix/postscreen", h.postscreen_pid);
  const std::string client = absl::StrCat(ClientName(ip), "[", ip, "]");
  const std::string helo = Lower(&rng_, 8) + ".com";
  Emit(dmz_, t0, absl::StrCat(ps, "CONNECT from ", remote, " to [", kDmzPublicIp, "]:25"));
  const int64_t t1 = t0 + rng_.Range(300, 4000);
  Emit(dmz_, t1, absl::StrCat(ps, "PASS OLD ", remote));
  const int64_t connect = t1 + rng_.Range(500, 4000);
  const int64_t client_t = connect + rng_.Range(200 * kMs, 2 * kSecond);
  const int64_t msgid_t = client_t + rng_.Range(300 * kMs, 3 * kSecond);
  const int64_t verdict = msgid_t + rng_.Range(5 * kMs, 2 * kSecond);
  const int64_t disconnect = verdict + rng_.Range(20 * kMs, 500 * kMs);
  const int smtpd_pid = Pid(h, h.smtpd, connect, disconnect);
  const int cleanup_pid = Pid(h, h.cleanup, client_t, verdict);
  const std::string smtpd = Prog(h, "postfix/smtpd", smtpd_pid);
  const std::string cleanup = Prog(h, "postfix/cleanup", cleanup_pid);

  instances_.emplace_back();
  Instance* in = &instances_.back();
  in->host = dmz_;
  in->origin = "smtpd";
  in->client_ip = ip;
  in->sender = rng_.Chance(0.1) ? "" : SpamAddress();
  in->message_id = ClientMessageId(-1, t0);
  in->queue_id = AllocateQueueId(h, client_t, verdict, &in->reused);
  const std::string& qid = in->queue_id;
  TruthRcpt rcpt;
  rcpt.to = LocalAddress();
  const std::string envelope =
      absl::StrCat("from=<", in->sender, "> to=<", rcpt.to, "> proto=ESMTP helo=<", helo, ">");
  std::string line;
  bool header_check = false;
  switch (rng_.Below(4)) {
    case 0:
      header_check = true;
      in->disposition = "rejected";
      line = absl::StrCat(cleanup, qid, ": reject: header Subject: ",
                          rng_.Chance(0.5) ? "You have won!!!" : "Cheap meds online", " from ",
                          client, "; ", envelope, ": 5.7.1 Message content rejected");
      break;
    case 1:
      in->disposition = "rejected";
      line = absl::StrCat(cleanup, qid, ": reject: body <a href=\"http://", Lower(&rng_, 7), ".",
                          rng_.Pick(kSpamTlds), "/\">click here</a> from ", client, "; ", envelope,
                          ": 5.7.1 Spam URL in body");
      break;
    case 2:
      in->disposition = "rejected";
      line = absl::StrCat(cleanup, qid, ": milter-reject: END-OF-MESSAGE from ", client,
                          ": 5.7.1 Spam message rejected; ", envelope);
      break;
    default:
      header_check = rng_.Chance(0.5);
      in->disposition = "discarded";
      line = absl::StrCat(cleanup, qid, ": discard: ",
                          header_check ? "header X-Spam-Flag: YES" : "body casino bonus", " from ",
                          client, "; ", envelope, ": dropped by content policy");
      break;
  }
  rcpt.status = in->disposition;
  in->rcpts.push_back(std::move(rcpt));
  ++summary_.cleanup_refusals;
  Emit(dmz_, connect, absl::StrCat(smtpd, "connect from ", client));
  EmitQ(in, client_t, absl::StrCat(smtpd, qid, ": client=", client));
  // A header check may fire before the Message-ID header is read; then cleanup logs none.
  if (!header_check || rng_.Chance(0.5)) {
    EmitQ(in, msgid_t, absl::StrCat(cleanup, qid, ": message-id=<", in->message_id, ">"));
  }
  EmitQ(in, verdict, std::move(line));
  const bool refused = std::string_view(in->disposition) == "rejected";
  Emit(dmz_, disconnect,
       absl::StrCat(smtpd, "disconnect from ", client, " ehlo=1 mail=1 rcpt=1 data=",
                    refused ? "0/1 quit=1 commands=4/5" : "1 quit=1 commands=5"));
}

void Sim::SaslNoise(int64_t t0) {
  // One attacker works through a password list: a connection every few seconds, one failed
  // AUTH each.
  Host& h = hosts_[mx_];
  const std::string ip = PublicIp();
  const std::string client = absl::StrCat("unknown[", ip, "]");
  const int tries = static_cast<int>(rng_.Range(2, 12));
  const char* method = rng_.Chance(0.8) ? "LOGIN" : "PLAIN";
  int64_t t = t0;
  for (int i = 0; i < tries; ++i) {
    const int64_t t1 = t + rng_.Range(300 * kMs, 900 * kMs);
    const int64_t t2 = t1 + 2 * kSecond + rng_.Range(0, 1500 * kMs);  // smtpd's error sleep
    const int pid = Pid(h, h.submission, t, t2);
    const std::string prog = Prog(h, "postfix/submission/smtpd", pid);
    Emit(mx_, t, absl::StrCat(prog, "connect from ", client));
    // smtpd_tls_auth_only: AUTH is offered only after STARTTLS.
    Emit(mx_, t + rng_.Range(20 * kMs, 150 * kMs),
         absl::StrCat(prog, "Anonymous TLS connection established from ", client, ": ",
                      rng_.Chance(0.7) ? kTls13 : kTls12));
    Emit(mx_, t1,
         absl::StrCat(prog, "warning: ", client, ": SASL ", method, " authentication failed: ",
                      rng_.Chance(0.5) ? "authentication failure" : "UGFzc3dvcmQ6"));
    if (rng_.Chance(0.5)) {
      Emit(mx_, t2, absl::StrCat(prog, "lost connection after AUTH from ", client));
      Emit(mx_, t2 + rng_.Range(50, 500),
           absl::StrCat(prog, "disconnect from ", client,
                        " ehlo=2 starttls=1 auth=0/1 commands=3/4"));
    } else {
      Emit(mx_, t2,
           absl::StrCat(prog, "disconnect from ", client,
                        " ehlo=2 starttls=1 auth=0/1 rset=1 quit=1 commands=5/6"));
    }
    t = t2 + rng_.Range(1 * kSecond, 20 * kSecond);
  }
}

void Sim::ConnectionNoise(int64_t t0) {
  const bool at_dmz = rng_.Chance(0.75);
  const std::string ip = PublicIp();
  if (!at_dmz) {
    Host& h = hosts_[mx_];
    const std::string client = absl::StrCat(ClientName(ip), "[", ip, "]");
    const int64_t t1 = t0 + rng_.Range(100 * kMs, 3 * kSecond);
    const int pid = Pid(h, h.submission, t0, t1);
    const std::string prog = Prog(h, "postfix/submission/smtpd", pid);
    Emit(mx_, t0, absl::StrCat(prog, "connect from ", client));
    Emit(mx_, t1, absl::StrCat(prog, "disconnect from ", client, " ehlo=1 quit=1 commands=2"));
    return;
  }
  Host& h = hosts_[dmz_];
  const std::string ps = Prog(h, "postfix/postscreen", h.postscreen_pid);
  const std::string remote = absl::StrCat("[", ip, "]:", rng_.Range(1024, 65535));
  Emit(dmz_, t0, absl::StrCat(ps, "CONNECT from ", remote, " to [", kDmzPublicIp, "]:25"));
  switch (rng_.Below(4)) {
    case 0: {
      const int64_t t = t0 + rng_.Range(10 * kMs, 900 * kMs);
      Emit(dmz_, t,
           absl::StrCat(ps, "PREGREET 11 after ", (t - t0) / (10 * kMs) / 100.0, " from ", remote,
                        ": EHLO User\\r\\n"));
      Emit(dmz_, t + rng_.Range(1 * kMs, 50 * kMs), absl::StrCat(ps, "DISCONNECT ", remote));
      return;
    }
    case 1: {
      const int64_t t = t0 + rng_.Range(100 * kMs, 5 * kSecond);
      Emit(dmz_, t,
           absl::StrCat(ps, "HANGUP after ", (t - t0) / (100 * kMs) / 10.0, " from ", remote,
                        " in tests before SMTP handshake"));
      Emit(dmz_, t + rng_.Range(100, 900), absl::StrCat(ps, "DISCONNECT ", remote));
      return;
    }
    default: {
      const int64_t t1 = t0 + rng_.Range(300, 4000);
      Emit(dmz_, t1, absl::StrCat(ps, "PASS OLD ", remote));
      const std::string client = absl::StrCat(ClientName(ip), "[", ip, "]");
      const int64_t t2 = t1 + rng_.Range(500, 4000);
      const int64_t t3 = t2 + rng_.Range(100 * kMs, 30 * kSecond);
      const int pid = Pid(h, h.smtpd, t2, t3 + kMs);
      const std::string prog = Prog(h, "postfix/smtpd", pid);
      Emit(dmz_, t2, absl::StrCat(prog, "connect from ", client));
      if (rng_.Chance(0.5)) {
        Emit(dmz_, t3, absl::StrCat(prog, "lost connection after EHLO from ", client));
        Emit(dmz_, t3 + rng_.Range(50, 500),
             absl::StrCat(prog, "disconnect from ", client, " ehlo=1 commands=1"));
      } else {
        Emit(dmz_, t3, absl::StrCat(prog, "disconnect from ", client, " ehlo=1 quit=1 commands=2"));
      }
      return;
    }
  }
}

void Sim::Run(int64_t count) {
  const int64_t span = end_us_ - start_us_;
  for (int64_t i = 0; i < count; ++i) {
    // Stratified arrivals: one scenario per slice of the span, at a random moment in it, so
    // the count is exact and start times still look random.
    const int64_t slice_begin =
        start_us_ + static_cast<int64_t>(static_cast<double>(span) * i / count);
    const int64_t slice_end =
        start_us_ + static_cast<int64_t>(static_cast<double>(span) * (i + 1) / count);
    const int64_t t0 = slice_begin + static_cast<int64_t>(rng_.Below(static_cast<uint64_t>(
                                         std::max<int64_t>(1, slice_end - slice_begin))));
    Scenario(t0);
    WriteTruth();
    // Every later scenario starts at or after slice_end, and all its lines come after its
    // start: whatever is pending before that can be written in order now.
    FlushBefore(slice_end);
  }
  FlushBefore(kNever);
  for (const Host& h : hosts_) {
    summary_.lines_per_host.emplace_back(h.opt.name, h.lines);
    summary_.lines += h.lines;
  }
}

class CountingSink : public SimulatorSink {
 public:
  void Line(int, std::string_view) override {}
  void Truth(std::string_view) override {}
};

}  // namespace

std::vector<SimHostOptions> DefaultSimHosts() {
  SimHostOptions dmz;
  dmz.name = "dmz";
  dmz.stamp = StampForm::kClassic;
  SimHostOptions mx;
  mx.name = "mx";
  mx.stamp = StampForm::kRfc3339;
  return {dmz, mx};
}

absl::Status ValidateSimulatorOptions(const SimulatorOptions& options) {
  const std::vector<SimHostOptions> hosts =
      options.hosts.empty() ? DefaultSimHosts() : options.hosts;
  bool dmz = false, mx = false;
  for (size_t i = 0; i < hosts.size(); ++i) {
    const std::string& n = hosts[i].name;
    if (n != "dmz" && n != "mx" && n != "out") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown host \"", n, "\": the site has dmz, mx and optionally out"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (hosts[j].name == n) return absl::InvalidArgumentError(absl::StrCat("host ", n, " twice"));
    }
    dmz = dmz || n == "dmz";
    mx = mx || n == "mx";
    if (absl::AbsDuration(hosts[i].skew) > absl::Hours(1)) {
      return absl::InvalidArgumentError(absl::StrCat("skew of ", n, " beyond one hour"));
    }
  }
  if (!dmz || !mx) return absl::InvalidArgumentError("the site needs both dmz and mx");
  if (options.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("duration must be positive");
  }
  if (options.messages <= 0 && options.target_lines <= 0) {
    return absl::InvalidArgumentError("need a positive number of lines or messages");
  }
  if (absl::AbsDuration(options.zone_offset) > absl::Hours(14)) {
    return absl::InvalidArgumentError("zone offset beyond 14 hours");
  }
  if (options.queue_lifetime <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("queue lifetime must be positive");
  }
  const TrafficMix& m = options.mix;
  if (m.inbound + m.outbound + m.internal + m.pickup + m.spam + m.reject + m.sasl_noise +
          m.connection_noise + m.content_check <=
      0) {
    return absl::InvalidArgumentError("traffic mix has no positive weight");
  }
  const ExtraFileOptions& x = options.extra_files;
  // Negated comparisons so that NaN fails too.
  if (x.extracts && !(x.extract_from >= 0 && x.extract_from < x.extract_to && x.extract_to <= 1)) {
    return absl::InvalidArgumentError("extract range must satisfy 0 <= from < to <= 1");
  }
  if (x.syslog_copies && !(x.copy_from >= 0 && x.copy_from < 1)) {
    return absl::InvalidArgumentError("syslog copy must start at a fraction in [0, 1)");
  }
  if (x.non_maillogs && x.dovecot_lines <= 0) {
    return absl::InvalidArgumentError("dovecot.log needs a positive number of lines");
  }
  return absl::OkStatus();
}

absl::StatusOr<SimulatorSummary> Simulate(const SimulatorOptions& options, SimulatorSink* sink) {
  absl::Status valid = ValidateSimulatorOptions(options);
  if (!valid.ok()) return valid;
  int64_t scenarios = 0;
  const TrafficMix& m = options.mix;
  const double total = m.inbound + m.outbound + m.internal + m.pickup + m.spam + m.reject +
                       m.sasl_noise + m.connection_noise + m.content_check;
  if (options.messages > 0) {
    const double messages =
        m.inbound + m.outbound + m.internal + m.pickup + m.spam + m.content_check;
    if (messages <= 0) return absl::InvalidArgumentError("--messages with no message traffic");
    scenarios = static_cast<int64_t>(std::llround(options.messages * total / messages));
  } else {
    // Lines per scenario depend on the mix and the rates: measure them on a small run with a
    // seed of its own, spread over the same span so the cut at the end weighs the same.
    constexpr int64_t kCalibration = 2000;
    CountingSink counter;
    Sim probe(options, &counter, options.seed ^ 0x5eed5eed5eed5eedULL);
    probe.Run(kCalibration);
    const double per =
        std::max<double>(1.0, static_cast<double>(probe.summary().lines) / kCalibration);
    scenarios = std::max<int64_t>(1, std::llround(options.target_lines / per));
  }
  Sim sim(options, sink, options.seed);
  sim.Run(scenarios);
  SimulatorSummary summary = sim.summary();
  sink->Truth(SummaryJson(summary));
  return summary;
}

std::string SummaryJson(const SimulatorSummary& s) {
  std::string out = "{\"summary\":{\"lines\":{";
  for (size_t i = 0; i < s.lines_per_host.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", "\"", s.lines_per_host[i].first,
                    "\":", s.lines_per_host[i].second);
  }
  absl::StrAppend(&out, "},\"total_lines\":", s.lines, ",\"scenarios\":", s.scenarios,
                  ",\"messages\":", s.instances, ",\"links\":", s.links,
                  ",\"relay_links\":", s.relay_links, ",\"reinject_links\":", s.reinject_links,
                  ",\"bounce_links\":", s.bounce_links, ",\"bounces\":", s.bounce_links,
                  ",\"externals\":", s.externals, ",\"foreign_collisions\":", s.foreign_collisions,
                  ",\"reused_queue_ids\":", s.reused_queue_ids,
                  ",\"noqueue_rejects\":", s.noqueue_rejects, ",\"expired\":", s.expired,
                  // Only when there are some: the summary of existing seeds stays as it was.
                  s.cleanup_refusals > 0
                      ? absl::StrCat(",\"cleanup_refusals\":", s.cleanup_refusals)
                      : std::string(),
                  "}}");
  return out;
}

namespace {

// Files for SimulateToDirectory: one per host plus the truth, written through large buffers.
class DirectorySink : public SimulatorSink {
 public:
  ~DirectorySink() override { Close().IgnoreError(); }

  absl::Status Open(const std::string& dir, const std::vector<SimHostOptions>& hosts) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
    for (const SimHostOptions& h : hosts) {
      absl::Status s = OpenOne(absl::StrCat(dir, "/", h.name, ".log"));
      if (!s.ok()) return s;
    }
    return OpenOne(absl::StrCat(dir, "/truth.jsonl"));
  }

  void Line(int host, std::string_view line) override { Put(files_[host], line); }
  void Truth(std::string_view json) override { Put(files_.back(), json); }

  absl::Status Close() {
    absl::Status status = ok_ ? absl::OkStatus() : absl::InternalError("write failed");
    for (std::FILE* f : files_) {
      if (std::fclose(f) != 0 && status.ok()) status = absl::InternalError("close failed");
    }
    files_.clear();
    buffers_.clear();
    return status;
  }

 private:
  absl::Status OpenOne(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return absl::InternalError(absl::StrCat("cannot write ", path));
    buffers_.push_back(std::make_unique<char[]>(kBuffer));
    std::setvbuf(f, buffers_.back().get(), _IOFBF, kBuffer);
    files_.push_back(f);
    return absl::OkStatus();
  }
  void Put(std::FILE* f, std::string_view s) {
    if (std::fwrite(s.data(), 1, s.size(), f) != s.size() || std::fputc('\n', f) == EOF) {
      ok_ = false;
    }
  }

  static constexpr size_t kBuffer = 1 << 20;
  std::vector<std::FILE*> files_;  // hosts in order, then the truth
  std::vector<std::unique_ptr<char[]>> buffers_;
  bool ok_ = true;
};

// ---- files beside the logs (ExtraFileOptions) ---------------------------------------------

// A file written line by line, its status kept until Close.
class LineFile {
 public:
  LineFile() = default;
  LineFile(const LineFile&) = delete;
  LineFile& operator=(const LineFile&) = delete;
  ~LineFile() {
    if (f_ != nullptr) std::fclose(f_);
  }

  absl::Status Open(const std::string& path) {
    path_ = path;
    f_ = std::fopen(path.c_str(), "wb");
    if (f_ == nullptr) return absl::InternalError(absl::StrCat("cannot write ", path));
    return absl::OkStatus();
  }
  void Put(std::string_view line) {
    if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() ||
        std::fputc('\n', f_) == EOF) {
      ok_ = false;
    }
    ++lines_;
  }
  absl::Status Close() {
    if (f_ == nullptr) return absl::FailedPreconditionError(absl::StrCat(path_, " is not open"));
    const bool closed = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok_ || !closed) return absl::InternalError(absl::StrCat("writing ", path_, " failed"));
    return absl::OkStatus();
  }
  int64_t lines() const { return lines_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  bool ok_ = true;
  int64_t lines_ = 0;
};

// Line `fraction` of a log of `n` lines, rounded down.
int64_t LineAt(int64_t n, double fraction) {
  return std::min<int64_t>(n, static_cast<int64_t>(std::floor(static_cast<double>(n) * fraction)));
}

// Reads DIR/<host>.log back and writes its extract and syslog copy from its own bytes, so
// that their lines cannot differ from the log's: the point of an overlapping file.
absl::Status WriteSlices(const std::string& dir, const std::string& host, int64_t n,
                         const ExtraFileOptions& x, std::vector<ExtraFile>* files) {
  struct Slice {
    ExtraFile file;
    LineFile out;
  };
  std::vector<std::unique_ptr<Slice>> slices;
  auto add = [&](const char* suffix, int64_t first, int64_t end) -> absl::Status {
    auto slice = std::make_unique<Slice>();
    slice->file.name = absl::StrCat(host, suffix);
    slice->file.host = host;
    slice->file.first_line = first;
    slice->file.lines = end - first;
    absl::Status s = slice->out.Open(absl::StrCat(dir, "/", slice->file.name));
    slices.push_back(std::move(slice));
    return s;
  };
  if (x.extracts) {
    absl::Status s = add(".extract.log", LineAt(n, x.extract_from), LineAt(n, x.extract_to));
    if (!s.ok()) return s;
  }
  if (x.syslog_copies) {
    absl::Status s = add(".syslog-copy.log", LineAt(n, x.copy_from), n);
    if (!s.ok()) return s;
  }
  const std::string log = absl::StrCat(dir, "/", host, ".log");
  std::ifstream in(log, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", log));
  std::string line;
  for (int64_t i = 0; std::getline(in, line); ++i) {
    for (auto& slice : slices) {
      if (i >= slice->file.first_line && i < slice->file.first_line + slice->file.lines) {
        slice->out.Put(line);
      }
    }
  }
  for (auto& slice : slices) {
    absl::Status s = slice->out.Close();
    if (!s.ok()) return s;
    // The log is the one this run wrote: a shorter one is a bug or a file changed under us.
    if (slice->out.lines() != slice->file.lines) {
      return absl::InternalError(absl::StrCat(log, " has fewer lines than written"));
    }
    files->push_back(slice->file);
  }
  return absl::OkStatus();
}

// "2025-01-01 00:12:05 ": Dovecot's stamp with log_timestamp = "%Y-%m-%d %H:%M:%S ".
void AppendDovecotStamp(std::string* s, int64_t local_us) {
  const Civil c = ToCivil(FloorDiv(local_us, kSecond));
  AppendDigits(s, c.year, 4);
  s->push_back('-');
  AppendDigits(s, c.month, 2);
  s->push_back('-');
  AppendDigits(s, c.day, 2);
  s->push_back(' ');
  AppendDigits(s, c.hour, 2);
  s->push_back(':');
  AppendDigits(s, c.minute, 2);
  s->push_back(':');
  AppendDigits(s, c.second, 2);
  s->push_back(' ');
}

// DIR/dovecot.log: mx's Dovecot writing its own log_path file. Its own random stream (seeded
// from the options' seed), so the logs and the truth are the same with or without it.
absl::Status WriteDovecotLog(const SimulatorOptions& options, const std::string& path,
                             int64_t* lines) {
  Rng rng(options.seed ^ 0xd07ec07d0fe1a5edULL);
  int64_t skew_us = 0;
  for (const SimHostOptions& h : options.hosts.empty() ? DefaultSimHosts() : options.hosts) {
    if (h.name == "mx") skew_us = absl::ToInt64Microseconds(h.skew);
  }
  const std::string lip = options.loopback_hosts ? "127.0.0.3" : "10.1.0.3";
  const int64_t start_us = absl::ToUnixMicros(options.start);
  const int64_t end_us = absl::ToUnixMicros(options.start + options.duration);
  const int64_t zone_us = absl::ToInt64Microseconds(options.zone_offset);
  const int64_t gap_us =
      std::max<int64_t>(1, (end_us - start_us) / options.extra_files.dovecot_lines);
  LineFile out;
  absl::Status s = out.Open(path);
  if (!s.ok()) return s;
  std::string line;
  for (int64_t t = start_us + rng.Exp(gap_us); t < end_us; t += 1 + rng.Exp(gap_us)) {
    const std::string user = absl::StrCat(rng.Pick(LocalUsers()), "@", kDomain);
    const std::string rip = absl::StrCat("10.20.", rng.Range(0, 15), ".", rng.Range(2, 254));
    const std::string session = Alnum(&rng, 16);
    const int64_t pid = rng.Range(1000, 60000);
    line.clear();
    AppendDovecotStamp(&line, t + skew_us + zone_us);
    const uint64_t kind = rng.Below(100);
    if (kind < 30) {
      absl::StrAppend(&line, "imap-login: Info: Login: user=<", user, ">, method=PLAIN, rip=", rip,
                      ", lip=", lip, ", mpid=", pid, ", TLS, session=<", session, ">");
    } else if (kind < 55) {
      absl::StrAppend(&line, "imap(", user, ")<", pid, "><", session,
                      ">: Info: Logged out in=", rng.Range(50, 5000),
                      " out=", rng.Range(500, 900000),
                      " deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 "
                      "body_bytes=0");
    } else if (kind < 65) {
      absl::StrAppend(&line, "pop3-login: Info: Login: user=<", user, ">, method=PLAIN, rip=", rip,
                      ", lip=", lip, ", mpid=", pid, ", TLS, session=<", session, ">");
    } else if (kind < 85) {
      absl::StrAppend(&line, "lmtp(", user, ")<", pid, "><", session, ">: Info: msgid=<",
                      LowerHex(&rng, 16), "@", kDomain, ">: saved mail to INBOX");
    } else if (kind < 95) {
      absl::StrAppend(&line, "auth: Info: passwd-file(", user, ",", rip, ",<", session,
                      ">): Password mismatch");
    } else {
      absl::StrAppend(&line, "imap-login: Info: Disconnected: Connection closed (auth failed, ",
                      rng.Range(1, 3), " attempts in ", rng.Range(2, 12), " secs): user=<", user,
                      ">, method=PLAIN, rip=", rip, ", lip=", lip, ", TLS, session=<", session,
                      ">");
    }
    out.Put(line);
  }
  *lines = out.lines();
  return out.Close();
}

// DIR/README.txt: a note someone left in the log directory.
absl::Status WriteReadme(const SimulatorOptions& options, const std::string& path, int64_t* lines) {
  std::string hosts;
  for (const SimHostOptions& h : options.hosts.empty() ? DefaultSimHosts() : options.hosts) {
    absl::StrAppend(&hosts, hosts.empty() ? "" : ", ", h.name);
  }
  const std::string text[] = {
      absl::StrCat("Mail logs of ", kDomain, " (simulated by maillens-simulate, seed ",
                   options.seed, ")."),
      "",
      absl::StrCat("Hosts: ", hosts, ". Each <host>.log is that host's maillog;"),
      "<host>.extract.log and <host>.syslog-copy.log hold some of the same lines again.",
      "dovecot.log is Dovecot's own log_path file, not a maillog.",
  };
  LineFile out;
  absl::Status s = out.Open(path);
  if (!s.ok()) return s;
  for (const std::string& line : text) out.Put(line);
  *lines = out.lines();
  return out.Close();
}

absl::Status WriteExtraFiles(const SimulatorOptions& options, const std::string& dir,
                             SimulatorSummary* summary) {
  const ExtraFileOptions& x = options.extra_files;
  if (x.extracts || x.syslog_copies) {
    for (const auto& [host, n] : summary->lines_per_host) {
      absl::Status s = WriteSlices(dir, host, n, x, &summary->extra_files);
      if (!s.ok()) return s;
    }
  }
  if (x.non_maillogs) {
    ExtraFile dovecot;
    dovecot.name = "dovecot.log";
    absl::Status s = WriteDovecotLog(options, absl::StrCat(dir, "/", dovecot.name), &dovecot.lines);
    if (!s.ok()) return s;
    summary->extra_files.push_back(dovecot);
    ExtraFile readme;
    readme.name = "README.txt";
    s = WriteReadme(options, absl::StrCat(dir, "/", readme.name), &readme.lines);
    if (!s.ok()) return s;
    summary->extra_files.push_back(readme);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SimulatorSummary> SimulateToDirectory(const SimulatorOptions& options,
                                                     const std::string& dir) {
  absl::Status valid = ValidateSimulatorOptions(options);
  if (!valid.ok()) return valid;
  DirectorySink sink;
  absl::Status opened = sink.Open(dir, options.hosts.empty() ? DefaultSimHosts() : options.hosts);
  if (!opened.ok()) return opened;
  absl::StatusOr<SimulatorSummary> summary = Simulate(options, &sink);
  absl::Status closed = sink.Close();
  if (!summary.ok()) return summary;
  if (!closed.ok()) return closed;
  absl::Status extra = WriteExtraFiles(options, dir, &*summary);
  if (!extra.ok()) return extra;
  return summary;
}

}  // namespace maillens::tools
