// lib/smtp/command.cc -- see command.h.
#include "lib/smtp/command.h"
