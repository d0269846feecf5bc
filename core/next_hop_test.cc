#include "core/next_hop.h"

#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace maillens::core {
namespace {

struct Hop {
  NextHopForm form;
  std::string id;
};

Hop Extract(std::string_view reply) {
  std::string_view id;
  NextHopForm form = ExtractNextHop(reply, &id);
  return {form, std::string(id)};
}

TEST(NextHopTest, Postfix) {
  Hop hop = Extract("250 2.0.0 Ok: queued as 7D3E2C1B0A");
  EXPECT_EQ(hop.form, NextHopForm::kPostfix);
  EXPECT_EQ(hop.id, "7D3E2C1B0A");
  hop = Extract("250 2.0.0 Ok: queued as 3sT4vW5xY6z7Bc8");
  EXPECT_EQ(hop.form, NextHopForm::kPostfix);
  EXPECT_EQ(hop.id, "3sT4vW5xY6z7Bc8");
}

TEST(NextHopTest, OtherQueuedAsWordings) {
  // Older or foreign wording, an ID that is no Postfix queue ID, or text after the ID.
  Hop hop = Extract("250 Ok: queued as 5A4B3C2D1E");
  EXPECT_EQ(hop.form, NextHopForm::kOther);
  EXPECT_EQ(hop.id, "5A4B3C2D1E");
  hop = Extract("250 OK queued as zzzz-0001");
  EXPECT_EQ(hop.form, NextHopForm::kOther);
  EXPECT_EQ(hop.id, "zzzz-0001");
  hop = Extract("250 2.0.0 Ok: queued as 5A4B3C2D1E (thanks)");
  EXPECT_EQ(hop.form, NextHopForm::kOther);
  EXPECT_EQ(hop.id, "5A4B3C2D1E");
  hop = Extract("250 2.0.0 Ok: queued as not-a-postfix-id");
  EXPECT_EQ(hop.form, NextHopForm::kOther);
  hop = Extract("250 Message Queued as ABC123.");
  EXPECT_EQ(hop.form, NextHopForm::kOther);
  EXPECT_EQ(hop.id, "ABC123");
}

TEST(NextHopTest, ContentFilter) {
  Hop hop = Extract(
      "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as "
      "9E8D7C6B5A");
  EXPECT_EQ(hop.form, NextHopForm::kContentFilter);
  EXPECT_EQ(hop.id, "9E8D7C6B5A");
  // The inner reply may come from a non-Postfix MTA.
  hop = Extract("250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 OK id=1rXyZa-000Ab1-Cd");
  EXPECT_EQ(hop.form, NextHopForm::kContentFilter);
  EXPECT_EQ(hop.id, "1rXyZa-000Ab1-Cd");
  // Without an ID inside there is no hop.
  EXPECT_EQ(Extract("250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok").form,
            NextHopForm::kNone);
  EXPECT_EQ(Extract("250 2.0.0 from MTA(smtp:[127.0.0.1]:10025").form, NextHopForm::kNone);
}

TEST(NextHopTest, Amavis) {
  Hop hop = Extract("queued_as: 6F5E4D3C2B, 1412 ms");
  EXPECT_EQ(hop.form, NextHopForm::kAmavis);
  EXPECT_EQ(hop.id, "6F5E4D3C2B");
}

TEST(NextHopTest, Exim) {
  Hop hop = Extract("250 OK id=1rXyZa-000Ab1-Cd");
  EXPECT_EQ(hop.form, NextHopForm::kExim);
  EXPECT_EQ(hop.id, "1rXyZa-000Ab1-Cd");
  hop = Extract("250 OK id=1rXyZa-00000000Ab1-Cd9z");  // Exim 4.97+ long IDs
  EXPECT_EQ(hop.form, NextHopForm::kExim);
  EXPECT_EQ(hop.id, "1rXyZa-00000000Ab1-Cd9z");
}

TEST(NextHopTest, Sendmail) {
  Hop hop = Extract("250 2.0.0 y4LMnP8q012345 Message accepted for delivery");
  EXPECT_EQ(hop.form, NextHopForm::kSendmail);
  EXPECT_EQ(hop.id, "y4LMnP8q012345");
  hop = Extract("250 2.0.0 a1B2c3D4e5-a1B2c3D6e7 Message accepted for delivery");
  EXPECT_EQ(hop.form, NextHopForm::kSendmail);
  EXPECT_EQ(hop.id, "a1B2c3D4e5-a1B2c3D6e7");
  // No ID before the phrase: nothing to follow.
  EXPECT_EQ(Extract("250 2.0.0 Message accepted for delivery").form, NextHopForm::kNone);
}

TEST(NextHopTest, Microsoft) {
  Hop hop = Extract(
      "250 2.6.0 <abc@mail.example> [InternalId=12345678901234, "
      "Hostname=AB1CD2EF345.eurprd01.prod.example.com] 9000 bytes in 0.100, "
      "88.000 KB/sec Queued mail for delivery");
  EXPECT_EQ(hop.form, NextHopForm::kMicrosoft);
  EXPECT_EQ(hop.id, "12345678901234");
}

TEST(NextHopTest, Gmail) {
  Hop hop = Extract(
      "250 2.0.0 OK  1712345678 q9-20020a17090a000000b0012345678si1234567pjb.321 "
      "- gsmtp");
  EXPECT_EQ(hop.form, NextHopForm::kGmail);
  EXPECT_EQ(hop.id, "q9-20020a17090a000000b0012345678si1234567pjb.321");
  hop = Extract("250 2.0.0 OK 1712345678 x1si2345678wrb.99 - gsmtp");
  EXPECT_EQ(hop.form, NextHopForm::kGmail);
  EXPECT_EQ(hop.id, "x1si2345678wrb.99");
  // A rejection that ends in "- gsmtp" is not a hop (and not a 250 either).
  EXPECT_EQ(Extract("550 5.7.1 blocked a1si2wrb.3 - gsmtp").form, NextHopForm::kNone);
}

TEST(NextHopTest, Forwarded) {
  Hop hop = Extract("forwarded as 3tV4wX5yZ6z7Bc9");
  EXPECT_EQ(hop.form, NextHopForm::kForwarded);
  EXPECT_EQ(hop.id, "3tV4wX5yZ6z7Bc9");
}

TEST(NextHopTest, OtherKnownShapes) {
  Hop hop = Extract("250 Requested mail action okay, completed: id=1AbCdE-1FgHiJ2kL-00MnOp");
  EXPECT_EQ(hop.form, NextHopForm::kOther);
  EXPECT_EQ(hop.id, "1AbCdE-1FgHiJ2kL-00MnOp");
  hop = Extract("250 ok:  Message 1234567 accepted");
  EXPECT_EQ(hop.form, NextHopForm::kOther);
  EXPECT_EQ(hop.id, "1234567");
  hop = Extract("250 2.0.0 <u@example.org> Zx9yW8+1/aBcDeFgHiJkLm Saved");
  EXPECT_EQ(hop.form, NextHopForm::kOther);
  EXPECT_EQ(hop.id, "Zx9yW8+1/aBcDeFgHiJkLm");
  hop = Extract("250 Ok 0100018f00aa11bb-22cc33dd-44ee-55ff-6677-8899aabbccdd-000000");
  EXPECT_EQ(hop.form, NextHopForm::kOther);
  EXPECT_EQ(hop.id, "0100018f00aa11bb-22cc33dd-44ee-55ff-6677-8899aabbccdd-000000");
  hop = Extract("250 2.0.0 9QwErTyUiOp1 mail accepted for delivery");
  EXPECT_EQ(hop.form, NextHopForm::kOther);
  EXPECT_EQ(hop.id, "9QwErTyUiOp1");
}

TEST(NextHopTest, NoHop) {
  for (std::string_view reply :
       {"", "250 ok dirdel", "250 2.0.0 Ok", "delivered to mailbox", "delivered to maildir",
        "250 2.6.0 message received", "250 2.1.5 u@example.org Ok", "queued as ", "queued as",
        "forwarded as ", "[InternalId=", "250 Ok short-id", "250 2.7.0 Ok, discarded, id=1-2 - x",
        "host mx.example[192.0.2.1] said: 550 5.1.1 unknown user (in reply to RCPT TO command)"}) {
    std::string_view id;
    EXPECT_EQ(ExtractNextHop(reply, &id), NextHopForm::kNone) << reply;
    EXPECT_TRUE(id.empty()) << reply;
  }
}

TEST(NextHopTest, TrailingPunctuationIsStripped) {
  EXPECT_EQ(Extract("250 Ok: queued as 5A4B3C2D1E).").id, "5A4B3C2D1E");
  EXPECT_EQ(Extract("250 2.0.0 Ok: queued as 5A4B3C2D1E ").form, NextHopForm::kPostfix);
}

TEST(NextHopTest, EveryPrefixIsSafe) {
  const std::string_view replies[] = {
      "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 9E8D7C6B5A",
      "250 2.6.0 <a@b> [InternalId=123, Hostname=x] Queued mail for delivery",
      "250 2.0.0 OK  1 a1si2.3 - gsmtp",
      "250 2.0.0 <u@x> Abc Saved",
      "250 ok:  Message 12 accepted",
      "250 OK id=1a-2b-3c",
  };
  for (std::string_view reply : replies) {
    for (size_t n = 0; n <= reply.size(); ++n) {
      std::string copy(reply.substr(0, n));
      std::string_view id;
      ExtractNextHop(copy, &id);
      if (!id.empty()) {
        EXPECT_GE(id.data(), copy.data());
        EXPECT_LE(id.data() + id.size(), copy.data() + copy.size());
      }
    }
  }
}

}  // namespace
}  // namespace maillens::core
