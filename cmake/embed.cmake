# cmake -DIN=FILE -DOUT=FILE.c -DNAME=symbol -P embed.cmake: FILE as a NUL-terminated C array
# NAME[] with NAME_len, so a document kept as one source file (docs/openapi.json) is served
# from the binary without a copy to keep in step.
file(READ "${IN}" hex HEX)
file(SIZE "${IN}" len)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE "${OUT}" "/* Generated from ${IN} by cmake/embed.cmake: do not edit. */\n"
  "const char ${NAME}[] = {\n${body}0x00};\nconst unsigned long ${NAME}_len = ${len}ul;\n")
