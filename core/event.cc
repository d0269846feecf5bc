#include "core/event.h"

namespace maillens::core {

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kUnparsed:
      return "unparsed";
    case Kind::kMalformed:
      return "malformed";
    case Kind::kConnect:
      return "connect";
    case Kind::kDisconnect:
      return "disconnect";
    case Kind::kLostConnection:
      return "lost_connection";
    case Kind::kTimeout:
      return "timeout";
    case Kind::kClient:
      return "client";
    case Kind::kReject:
      return "reject";
    case Kind::kCheckAction:
      return "check_action";
    case Kind::kSaslFailed:
      return "sasl_failed";
    case Kind::kTlsEstablished:
      return "tls_established";
    case Kind::kSmtpdOther:
      return "smtpd_other";
    case Kind::kPostscreenConnect:
      return "postscreen_connect";
    case Kind::kPostscreenPass:
      return "postscreen_pass";
    case Kind::kPostscreenListed:
      return "postscreen_listed";
    case Kind::kPostscreenViolation:
      return "postscreen_violation";
    case Kind::kPostscreenDnsbl:
      return "postscreen_dnsbl";
    case Kind::kPostscreenDisconnect:
      return "postscreen_disconnect";
    case Kind::kDnsblListed:
      return "dnsbl_listed";
    case Kind::kAnvilStats:
      return "anvil_stats";
    case Kind::kStatistics:
      return "statistics";
    case Kind::kMessageId:
      return "message_id";
    case Kind::kPickup:
      return "pickup";
    case Kind::kQueued:
      return "queued";
    case Kind::kRemoved:
      return "removed";
    case Kind::kExpired:
      return "expired";
    case Kind::kDelivery:
      return "delivery";
    case Kind::kDeliveryNote:
      return "delivery_note";
    case Kind::kNotification:
      return "notification";
    case Kind::kPostsuper:
      return "postsuper";
    case Kind::kMaster:
      return "master";
    case Kind::kLogMessage:
      return "log_message";
    case Kind::kDovecotDelivery:
      return "dovecot_delivery";
    case Kind::kDovecotAuth:
      return "dovecot_auth";
    case Kind::kAmavis:
      return "amavis";
    case Kind::kCount_:
      break;
  }
  return "unknown";
}

std::string_view FieldName(Field field) {
  switch (field) {
    case Field::kFrom:
      return "from";
    case Field::kTo:
      return "to";
    case Field::kOrigTo:
      return "orig_to";
    case Field::kRelay:
      return "relay";
    case Field::kRelayHost:
      return "relay_host";
    case Field::kRelayIp:
      return "relay_ip";
    case Field::kRelayPort:
      return "relay_port";
    case Field::kDelay:
      return "delay";
    case Field::kDelays:
      return "delays";
    case Field::kDsn:
      return "dsn";
    case Field::kStatus:
      return "status";
    case Field::kReply:
      return "reply";
    case Field::kSize:
      return "size";
    case Field::kNrcpt:
      return "nrcpt";
    case Field::kMessageId:
      return "message_id";
    case Field::kResentMessageId:
      return "resent_message_id";
    case Field::kClient:
      return "client";
    case Field::kClientHost:
      return "client_host";
    case Field::kClientIp:
      return "client_ip";
    case Field::kClientPort:
      return "client_port";
    case Field::kSaslMethod:
      return "sasl_method";
    case Field::kSaslUsername:
      return "sasl_username";
    case Field::kSaslSender:
      return "sasl_sender";
    case Field::kProto:
      return "proto";
    case Field::kHelo:
      return "helo";
    case Field::kAction:
      return "action";
    case Field::kStage:
      return "stage";
    case Field::kCode:
      return "code";
    case Field::kReason:
      return "reason";
    case Field::kUid:
      return "uid";
    case Field::kOrigQueueId:
      return "orig_queue_id";
    case Field::kNoticeQueueId:
      return "notice_queue_id";
    case Field::kCommands:
      return "commands";
    case Field::kTlsProtocol:
      return "tls_protocol";
    case Field::kTlsCipher:
      return "tls_cipher";
    case Field::kDetail:
      return "detail";
    case Field::kMailbox:
      return "mailbox";
    case Field::kUser:
      return "user";
    case Field::kCount_:
      break;
  }
  return "unknown";
}

std::string_view NextHopFormName(NextHopForm form) {
  switch (form) {
    case NextHopForm::kNone:
      return "";
    case NextHopForm::kPostfix:
      return "postfix";
    case NextHopForm::kContentFilter:
      return "content_filter";
    case NextHopForm::kAmavis:
      return "amavis";
    case NextHopForm::kExim:
      return "exim";
    case NextHopForm::kSendmail:
      return "sendmail";
    case NextHopForm::kMicrosoft:
      return "microsoft";
    case NextHopForm::kGmail:
      return "gmail";
    case NextHopForm::kForwarded:
      return "forwarded";
    case NextHopForm::kOther:
      return "other";
  }
  return "";
}

std::string_view SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
    case Severity::kFatal:
      return "fatal";
    case Severity::kPanic:
      return "panic";
  }
  return "info";
}

}  // namespace maillens::core
