// services/filter-bridge/filters/milter_edits.cc -- see milter_edits.h.
#include "services/filter-bridge/filters/milter_edits.h"

#include <string>

#include "lib/smtp/xtext.h"
#include "services/filter-bridge/message/message_edits.h"

namespace sluice::filter_bridge {
namespace {

std::string Unbracket(std::string_view a) {
  if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
  return std::string(a);
}

// "NOTIFY=SUCCESS ORCPT=rfc822;a@b" as parameters (keyword upper case; xtext values of
// ORCPT/ENVID decoded as the session record keeps them).
std::vector<sluice::v1::EsmtpParameter> ParseArgs(std::string_view args) {
  std::vector<sluice::v1::EsmtpParameter> out;
  size_t i = 0;
  while (i < args.size()) {
    while (i < args.size() && args[i] == ' ') ++i;
    size_t j = args.find(' ', i);
    if (j == std::string_view::npos) j = args.size();
    std::string_view token = args.substr(i, j - i);
    i = j;
    if (token.empty()) continue;
    sluice::v1::EsmtpParameter p;
    size_t eq = token.find('=');
    std::string keyword(token.substr(0, eq));
    for (char& c : keyword) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    p.set_keyword(keyword);
    if (eq != std::string_view::npos) {
      std::string value(token.substr(eq + 1));
      if (keyword == "ORCPT" || keyword == "ENVID") {
        auto decoded = smtp::XtextDecode(value);
        if (decoded.ok()) value = *decoded;
      }
      p.set_value(value);
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

bool MilterEditCollector::IsModification(char code) {
  switch (code) {
    case milter::kRespAddHeader:
    case milter::kRespInsHeader:
    case milter::kRespChgHeader:
    case milter::kRespAddRcpt:
    case milter::kRespAddRcptPar:
    case milter::kRespDelRcpt:
    case milter::kRespChgFrom:
    case milter::kRespReplBody:
    case milter::kRespQuarantine:
      return true;
    default:
      return false;
  }
}

absl::Status MilterEditCollector::Require(uint32_t action, char code) const {
  if ((actions_ & action) == action) return absl::OkStatus();
  return absl::FailedPreconditionError(std::string("milter sent '") + code +
                                       "' without negotiating that action");
}

std::string MilterEditCollector::RawValue(const std::string& value) const {
  // Postfix puts a space between "Name:" and the value unless leading spaces were negotiated.
  return MakeRawValue((leading_space_ ? "" : " ") + value, /*leading_space=*/false);
}

absl::Status MilterEditCollector::FlushBody(FilterDecision* decision) {
  if (body_ == nullptr || body_done_) return absl::OkStatus();
  std::string tail;
  normalizer_.Finish(&tail);
  if (absl::Status s = body_->Append(tail); !s.ok()) return s;
  if (absl::Status s = body_->Finish(); !s.ok()) return s;
  decision->new_body = std::shared_ptr<const MessageSpool>(std::move(body_));
  body_done_ = true;
  return absl::OkStatus();
}

absl::Status MilterEditCollector::Apply(const milter::Response& r, FilterDecision* d) {
  if (r.code != milter::kRespReplBody && body_ != nullptr && !body_done_) {
    // The body replacement ends with the first other request.
    if (absl::Status s = FlushBody(d); !s.ok()) return s;
  }
  ++edits_;
  switch (r.code) {
    case milter::kRespAddHeader:
    case milter::kRespInsHeader:
    case milter::kRespChgHeader: {
      const bool change = r.code == milter::kRespChgHeader;
      if (absl::Status s = Require(change ? milter::kActChangeHeaders : milter::kActAddHeaders, r.code);
          !s.ok()) {
        return s;
      }
      if (!IsValidFieldName(r.name)) {
        return absl::DataLossError("milter header edit with invalid name \"" + r.name.substr(0, 80) + "\"");
      }
      HeaderEdit e;
      e.name = r.name;
      if (r.code == milter::kRespAddHeader) {
        e.op = HeaderEdit::Op::kAdd;
        e.raw_value = RawValue(r.value);
      } else if (r.code == milter::kRespInsHeader) {
        e.op = HeaderEdit::Op::kInsert;  // index 0: top
        e.index = r.index;
        e.raw_value = RawValue(r.value);
      } else if (r.value.empty()) {
        e.op = HeaderEdit::Op::kDelete;  // index 1 (or 0): first occurrence
        e.index = r.index;
      } else {
        e.op = HeaderEdit::Op::kChange;
        e.index = r.index;
        e.raw_value = RawValue(r.value);
      }
      d->header_edits.push_back(std::move(e));
      return absl::OkStatus();
    }
    case milter::kRespAddRcpt:
    case milter::kRespAddRcptPar: {
      const bool par = r.code == milter::kRespAddRcptPar;
      if (absl::Status s = Require(par ? milter::kActAddRcptPar : milter::kActAddRcpt, r.code); !s.ok()) {
        return s;
      }
      sluice::v1::Recipient rcpt;
      rcpt.set_address(Unbracket(r.text));
      if (rcpt.address().empty()) return absl::DataLossError("milter added an empty recipient");
      for (auto& p : ParseArgs(r.args)) {
        if (p.keyword() == "NOTIFY") rcpt.set_notify(p.value());
        if (p.keyword() == "ORCPT") rcpt.set_orcpt(p.value());
        *rcpt.add_parameters() = std::move(p);
      }
      d->add_recipients.push_back(std::move(rcpt));
      return absl::OkStatus();
    }
    case milter::kRespDelRcpt:
      if (absl::Status s = Require(milter::kActDelRcpt, r.code); !s.ok()) return s;
      d->delete_recipients.push_back(Unbracket(r.text));
      return absl::OkStatus();
    case milter::kRespChgFrom:
      if (absl::Status s = Require(milter::kActChangeFrom, r.code); !s.ok()) return s;
      d->new_sender = Unbracket(r.text);
      d->new_sender_parameters = ParseArgs(r.args);
      return absl::OkStatus();
    case milter::kRespReplBody: {
      if (absl::Status s = Require(milter::kActChangeBody, r.code); !s.ok()) return s;
      if (body_done_) {
        return absl::DataLossError("milter body replacement mixed with other requests");
      }
      if (body_ == nullptr) body_ = MessageSpool::ForBody(spool_options_);
      std::string normalized;
      normalizer_.Feed(r.text, &normalized);
      return body_->Append(normalized);
    }
    case milter::kRespQuarantine:
      if (absl::Status s = Require(milter::kActQuarantine, r.code); !s.ok()) return s;
      d->hold = true;
      if (d->hold_reason.empty()) d->hold_reason = r.text.empty() ? "milter quarantine" : r.text;
      return absl::OkStatus();
    default:
      --edits_;
      return absl::DataLossError(std::string("not a milter modification: '") + r.code + "'");
  }
}

absl::Status MilterEditCollector::Finish(FilterDecision* decision) { return FlushBody(decision); }

}  // namespace sluice::filter_bridge
