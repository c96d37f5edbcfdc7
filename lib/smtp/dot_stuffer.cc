// lib/smtp/dot_stuffer.cc -- see dot_stuffer.h.
#include "lib/smtp/dot_stuffer.h"

namespace sluice::smtp {

void DotStuffer::Feed(std::string_view content, std::string& out) {
  if (content.empty()) return;
  size_t copied = 0;  // content[0, copied) is already in `out`
  for (size_t dot = content.find('.'); dot != std::string_view::npos;
       dot = content.find('.', dot + 1)) {
    const bool line_start = dot == 0 ? (at_line_start_ || last_cr_ || last_lf_)
                                     : (content[dot - 1] == '\n' || content[dot - 1] == '\r');
    if (!line_start) continue;
    out.append(content.data() + copied, dot - copied);
    out.push_back('.');  // the extra dot; the original follows with the next copy
    copied = dot;
  }
  out.append(content.data() + copied, content.size() - copied);

  const char last = content.back();
  if (content.size() >= 2) {
    at_line_start_ = last == '\n' && content[content.size() - 2] == '\r';
  } else {
    at_line_start_ = last == '\n' && last_cr_;
  }
  last_cr_ = last == '\r';
  last_lf_ = last == '\n';
}

void DotStuffer::Finish(std::string& out) {
  if (!at_line_start_) out.append("\r\n");
  out.append(".\r\n");
  Reset();
}

}  // namespace sluice::smtp
