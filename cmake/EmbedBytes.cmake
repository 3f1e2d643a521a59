# The one writer of a file's bytes as a C initializer, for the build steps
# that embed files into the programs (cmake/EmbedLua.cmake,
# cmake/EmbedWeb.cmake). Pure CMake, so the build needs no xxd.

# Sets out_var to the bytes of file path as C text: "0x..," 16 a line,
# each line after the first indented by four spaces, the last one ending
# with a separator (the caller closes the array, e.g. with a 0).
function(llmb_embed_bytes path out_var)
  file(READ "${path}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  # 16 bytes a line (CMake regexes have no {n} repetition).
  string(REPEAT "0x[0-9a-f][0-9a-f]," 16 sixteen)
  string(REGEX REPLACE "(${sixteen})" "\\1\n    " hex "${hex}")
  set(${out_var} "${hex}" PARENT_SCOPE)
endfunction()
