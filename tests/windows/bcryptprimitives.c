/*
 * bcryptprimitives.dll for Wine 8.0, which has none: Rust's standard library
 * (1.78 and later) imports ProcessPrng from it on Windows, so no Rust .exe
 * starts under Wine 8.0 without it. Windows itself has the real one; this is
 * for the tests only, placed beside the .exe (build-shim.sh), where Windows'
 * loader looks first. It fills the buffer from RtlGenRandom
 * (advapi32's SystemFunction036), which Wine has.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Like Windows' own, it always succeeds (or does not return). */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            ExitProcess(1);
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
