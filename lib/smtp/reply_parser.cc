// lib/smtp/reply_parser.cc -- see reply_parser.h.
#include "lib/smtp/reply_parser.h"
