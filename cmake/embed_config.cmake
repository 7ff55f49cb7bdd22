# Turns INPUT (an INI file) into OUTPUT, a C file defining
# `const char morphd_default_config[]` with the same text, so the built-in
# default and the packaged config/morphd.ini cannot drift apart.
file(READ "${INPUT}" text)
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "\n" "\\n\"\n    \"" text "${text}")
file(WRITE "${OUTPUT}.tmp"
  "/* Generated from config/morphd.ini by cmake/embed_config.cmake. */\n"
  "const char morphd_default_config[] =\n    \"${text}\";\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
