// lib/smtp/xtext.cc -- see xtext.h.
#include "lib/smtp/xtext.h"
