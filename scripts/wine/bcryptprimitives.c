/*
 * bcryptprimitives.dll for Debian 12's wine 8.0, built and installed into a throw-away wine
 * prefix by scripts/platform-check.sh. Test scaffolding only: never shipped with the agent.
 *
 * Why: Rust's standard library (1.78 and later) gets its randomness for HashMap keys from
 * ProcessPrng in bcryptprimitives.dll, which every supported Windows (10 and later) has. Wine
 * 8.0 has no such DLL, so any Rust program stops at load time with STATUS_DLL_NOT_FOUND
 * (c0000135) before main. This DLL exports the one function, backed by RtlGenRandom
 * (advapi32's SystemFunction036), the generator ProcessPrng itself wraps on Windows; newer
 * wine releases ship their own bcryptprimitives.dll and do the same.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 */
#include <windows.h>
#include <ntsecapi.h>

/* Same contract as Windows: fills `len` bytes, always returns TRUE on success. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG length; SIZE_T is 64 bits here. */
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
