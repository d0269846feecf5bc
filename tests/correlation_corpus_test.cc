// The correlator on real logs written outside this project (../shared/corpus, read in place).
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "store/importer.h"
#include "store/store.h"

namespace maillens::store {
namespace {

std::string Corpus(const std::string& rel) {
  const char* shared = std::getenv("MAILLENS_SHARED_DIR");
  return std::string(shared ? shared : "../shared") + "/corpus/" + rel;
}

class CorrelationCorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("maillens_corr_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    StoreOptions options;
    options.dir = dir_.string();
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Import(const std::string& rel, int year) {
    ImportOptions options;
    options.year = year;
    auto stats = ImportFile(store_.get(), Corpus(rel), options);
    ASSERT_TRUE(stats.ok()) << stats.status();
    ASSERT_GT(stats->stored, 0u) << rel;
  }
  std::vector<Trace> AllTraces() {
    auto traces = store_->TracesIn(INT64_MIN, INT64_MAX);
    EXPECT_TRUE(traces.ok()) << traces.status();
    return traces.ok() ? *traces : std::vector<Trace>{};
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

// One real production day with amavis: every message re-injected through 127.0.0.1:10025 is
// linked to the message it came from, so no message is counted twice.
TEST_F(CorrelationCorpusTest, PixelparkAmavisReinjectionsAreAllLinked) {
  Import("pixelpark-postfix-logsums/test/mail.log", 2023);
  int reinjected = 0, reinjected_linked = 0, reinject_links = 0, messages = 0, forwarded = 0;
  std::vector<Trace> traces = AllTraces();
  for (const Trace& t : traces) {
    std::set<int64_t> has_incoming;
    for (const LinkInfo& l : t.links) {
      has_incoming.insert(l.to);
      reinject_links += l.kind == "reinject";
    }
    for (const RecipientInfo& r : t.recipients) forwarded += r.next_form == "forwarded";
    for (const MessageInfo& m : t.messages) {
      ++messages;
      if (m.client.rfind("localhost[127.0.0.1]", 0) == 0) {
        ++reinjected;
        reinjected_linked += has_incoming.count(m.id);
      }
    }
  }
  std::printf(
      "pixelpark: %d message instances in %zu traces; %d re-injected, %d linked; %d "
      "reinject links (%d of them local(8) 'forwarded as')\n",
      messages, traces.size(), reinjected, reinjected_linked, reinject_links, forwarded);
  EXPECT_EQ(reinjected, 180);  // 180 "client=localhost[127.0.0.1]" lines in the file
  EXPECT_EQ(reinjected_linked, reinjected);
  // The file also has 3 local(8) deliveries "forwarded as QID": re-queued on the same host.
  EXPECT_EQ(forwarded, 3);
  EXPECT_EQ(reinject_links, reinjected + forwarded);
  // Every trace has exactly one root: a message counted once however many filters it passed.
  for (const Trace& t : traces) {
    std::set<int64_t> has_incoming;
    for (const LinkInfo& l : t.links) has_incoming.insert(l.to);
    EXPECT_EQ(t.messages.size() - has_incoming.size(), 1u) << "trace " << t.id;
  }
}

// The same message crossing two hosts; the receiving host logs it before the sender's
// status=sent, and the relay's logged address is not the one the receiver sees.
TEST_F(CorrelationCorpusTest, LightmeterTwoHostsFormOneTrace) {
  Import("lightmeter-controlcenter/individual_files/29_inbound_relayed_message_server_2.log", 2022);
  Import("lightmeter-controlcenter/individual_files/29_inbound_relayed_message_server_1.log", 2022);
  auto trace = store_->GetTrace("F27E789349");
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->messages.size(), 2u);
  EXPECT_EQ(trace->messages[0].queue_id, "670FCA58C8");  // the sender comes first
  EXPECT_EQ(trace->messages[1].queue_id, "F27E789349");
  ASSERT_EQ(trace->links.size(), 1u);
  EXPECT_EQ(trace->links[0].kind, "relay");
}

// Placeholder queue IDs reused on unrelated hosts must not be joined by ID alone.
TEST_F(CorrelationCorpusTest, LightmeterReusedPlaceholderIdsStayApart) {
  for (const char* f : {"12_two_independent_deliveries_in_the_same_smtpd_process_in_order.log",
                        "12_two_independent_deliveries_in_the_same_smtpd_process_mixed.log",
                        "13_empty_msgid_issue_388.log", "14_reuse_of_queueid.log"}) {
    Import(std::string("lightmeter-controlcenter/individual_files/") + f, 2022);
  }
  int cross_host = 0;
  for (const Trace& t : AllTraces()) {
    std::set<std::string> hosts;
    for (const MessageInfo& m : t.messages) hosts.insert(m.host);
    cross_host += hosts.size() > 1;
  }
  EXPECT_EQ(cross_host, 0);
}

}  // namespace
}  // namespace maillens::store
