//! Byte mutations of source files, for the tests that feed svc broken
//! input (tests/mutations.rs in process, tests/lsp.rs through the
//! language server). A fixed seed makes every failure reproduce.

/// Characters that matter to the grammar, so mutants reach deep rules.
const INTERESTING: &[u8] = b"{}()[]\"$.=!<>&|,:*@?'\\/\n\t 0123456789abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A mutant of `input`: one to four bytes changed, dropped, repeated or
/// spliced in from elsewhere in it.
pub fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.usize(1..=4) {
        if out.is_empty() {
            out.push(b'{');
        }
        let at = rng.usize(..out.len());
        match rng.u8(..6) {
            0 => out[at] = INTERESTING[rng.usize(..INTERESTING.len())],
            1 => {
                let end = (at + rng.usize(1..=16)).min(out.len());
                out.drain(at..end);
            }
            2 => {
                let end = (at + rng.usize(1..=32)).min(out.len());
                let piece = out[at..end].to_vec();
                let times = rng.usize(1..=3);
                for _ in 0..times {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            3 => out.insert(at, INTERESTING[rng.usize(..INTERESTING.len())]),
            4 => {
                // Splice a piece of the input somewhere else.
                let from = rng.usize(..input.len());
                let end = (from + rng.usize(1..=40)).min(input.len());
                out.splice(at..at, input[from..end].iter().copied());
            }
            _ => out[at] = rng.u8(..),
        }
    }
    out
}
