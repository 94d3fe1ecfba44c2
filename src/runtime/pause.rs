//! The image of the per-task network sandbox ("pause" container). No registry
//! can be assumed, so Berth makes it itself: a 129-byte static x86-64 ELF that
//! calls pause(2) forever, in a one-file tar that Docker imports.

/// The sandbox image's name.
pub const PAUSE_IMAGE: &str = "berth/pause:1";

/// A static x86-64 Linux executable: `loop { pause() }`.
pub fn pause_elf() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const CODE_OFFSET: u64 = 64 + 56;
    // mov eax, 34 (pause); syscall; jmp back to mov
    let code: [u8; 9] = [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];
    let total = CODE_OFFSET + code.len() as u64;
    let mut b = Vec::with_capacity(total as usize);
    // ELF header
    b.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    b.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&(BASE + CODE_OFFSET).to_le_bytes()); // entry
    b.extend_from_slice(&64u64.to_le_bytes()); // program headers
    b.extend_from_slice(&0u64.to_le_bytes()); // no sections
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&64u16.to_le_bytes());
    b.extend_from_slice(&56u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&[0; 6]);
    // One PT_LOAD segment, read + execute, covering the whole file.
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&5u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&BASE.to_le_bytes());
    b.extend_from_slice(&BASE.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(&0x1000u64.to_le_bytes());
    b.extend_from_slice(&code);
    b
}

/// A ustar archive holding one executable file.
pub fn tar_one(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let field = |h: &mut [u8; 512], at: usize, s: &[u8]| h[at..at + s.len()].copy_from_slice(s);
    field(&mut h, 0, name.as_bytes());
    field(&mut h, 100, b"0000755\0");
    field(&mut h, 108, b"0000000\0");
    field(&mut h, 116, b"0000000\0");
    field(&mut h, 124, format!("{:011o}\0", data.len()).as_bytes());
    field(&mut h, 136, b"00000000000\0");
    field(&mut h, 148, b"        ");
    h[156] = b'0';
    field(&mut h, 257, b"ustar\0");
    field(&mut h, 263, b"00");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    field(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_is_well_formed() {
        let e = pause_elf();
        assert_eq!(&e[..4], b"\x7fELF");
        assert_eq!(e.len(), 129);
        let entry = u64::from_le_bytes(e[24..32].try_into().unwrap());
        assert_eq!(entry, 0x40_0000 + 120);
    }

    #[test]
    fn tar_has_header_data_and_trailer() {
        let t = tar_one("pause", &[1, 2, 3]);
        assert_eq!(t.len(), 512 + 512 + 1024);
        assert_eq!(&t[257..263], b"ustar\0");
        assert_eq!(&t[512..515], &[1, 2, 3]);
    }
}
