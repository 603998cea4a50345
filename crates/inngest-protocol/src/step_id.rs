//! Step ids: the protocol's hashed ids (`hex(SHA-1(id))`, `id:n` for the n-th repeat).
//!
//! Hashing runs once per step per call, so it avoids allocation: the hex form lives inline in a
//! [`HashedId`], and the per-call repeat counter is keyed by the SHA-1 digest of the user's id
//! (computed anyway for its first occurrence) rather than by a copy of the id string.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use sha1::{Digest, Sha1};

/// Lowercase hex SHA-1 of a step id, as it appears in ops, `steps` keys and the stack.
///
/// ```
/// assert_eq!(
///     inngest_protocol::step_id::hash_id("my-step-id"),
///     "e7d8a2f140845095749d60246ff1110c9d01d76a"
/// );
/// ```
pub fn hash_id(id: &str) -> String {
    HashedId::from_digest(&Sha1::digest(id.as_bytes()).into())
        .as_str()
        .to_owned()
}

/// A hashed step id: 40 lowercase hex digits, stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashedId([u8; 40]);

impl HashedId {
    fn from_digest(digest: &[u8; 20]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 40];
        // Pairs of output bytes zipped with the digest: no index arithmetic, no bounds checks.
        for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0f)];
        }
        HashedId(out)
    }

    /// The hex digits as bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8; 40] {
        &self.0
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits; the check is a few word-sized compares.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for HashedId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for HashedId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for HashedId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for HashedId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for HashedId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for HashedId {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

/// SHA-1 digest of a user step id, the repeat counter's key. Two ids with the same digest would
/// collide in every SDK's memo anyway, so keying by the digest loses nothing.
#[derive(PartialEq, Eq)]
struct DigestKey([u8; 20]);

impl Hash for DigestKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(word));
    }
}

/// The digest is already uniformly distributed: use its first 8 bytes as the hash.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Per-call counter turning user step ids into hashed ids, repeats included.
#[derive(Default)]
pub struct IdCounter {
    seen: HashMap<DigestKey, u32, BuildHasherDefault<DigestHasher>>,
}

impl std::fmt::Debug for IdCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdCounter")
            .field("distinct_ids", &self.seen.len())
            .finish()
    }
}

/// The user's step id, borrowed from the step tool's argument (dereferences to `str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserId<'a>(pub &'a str);

impl std::ops::Deref for UserId<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

/// A step's identity within one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepId<'a> {
    /// The user's id.
    pub user: UserId<'a>,
    /// Repeat index (`None` for the first occurrence).
    pub index: Option<u32>,
    /// Hashed id.
    pub hash: HashedId,
}

impl IdCounter {
    /// A counter expecting about `n` distinct ids.
    pub fn with_capacity(n: usize) -> Self {
        IdCounter {
            seen: HashMap::with_capacity_and_hasher(n, Default::default()),
        }
    }

    /// The id of the next occurrence of `user` in code order.
    pub fn next<'a>(&mut self, user: &'a str) -> StepId<'a> {
        let digest: [u8; 20] = Sha1::digest(user.as_bytes()).into();
        let n = match self.seen.entry(DigestKey(digest)) {
            Entry::Occupied(mut e) => {
                *e.get_mut() += 1;
                *e.get()
            }
            Entry::Vacant(e) => {
                e.insert(0);
                0
            }
        };
        let (index, hash) = if n == 0 {
            (None, HashedId::from_digest(&digest))
        } else {
            // SHA-1 of `user:n`, without formatting a string.
            let mut digits = [0u8; 10];
            let mut at = digits.len();
            let mut rest = n;
            loop {
                at -= 1;
                digits[at] = b'0' + (rest % 10) as u8;
                rest /= 10;
                if rest == 0 {
                    break;
                }
            }
            let mut h = Sha1::new();
            h.update(user.as_bytes());
            h.update(b":");
            h.update(&digits[at..]);
            (Some(n), HashedId::from_digest(&h.finalize().into()))
        };
        StepId {
            user: UserId(user),
            index,
            hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_the_protocol_vectors() {
        // Values from the protocol fact sheet (spec, conformance runner and the captures).
        let cases = [
            ("a", "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"),
            ("s", "a0f1490a20d0211c997b44bc357e1972deab8ae3"),
            ("b", "e9d71f5ee7c92d6dc9e92ffdad17b8bd49418f98"),
            ("first step", "98bf98df193bcce7c33e6bc50927cf2ac21206cb"),
            ("sleep", "c3ca5f787365eae0dea86250e27d476406956478"),
            ("second step", "764e20ec975d4ef820d0f42e6a5833384bd7ee36"),
            ("wait", "daaad336276d15594d0e765f96c17cd746bf4971"),
            ("complete", "0737c22d3bfae812339732d14d8c7dbd6dc4e09c"),
        ];
        for (id, hash) in cases {
            assert_eq!(hash_id(id), hash, "{id}");
        }
    }

    #[test]
    fn repeats_get_index_suffixes() {
        let mut c = IdCounter::default();
        let first = c.next("my-step-id");
        let second = c.next("my-step-id");
        let third = c.next("my-step-id");
        let other = c.next("other");
        assert_eq!(first.hash, "e7d8a2f140845095749d60246ff1110c9d01d76a");
        assert_eq!(first.index, None);
        assert_eq!(second.hash, "f47c6228c581af870aa285200cf95ec3ac59bb6a");
        assert_eq!(second.index, Some(1));
        assert_eq!(third.hash, "5fdb32cd3e6e3d62fa480ac2ad526b79c2682845");
        assert_eq!(third.index, Some(2));
        assert_eq!(other.hash, hash_id("other"));
    }

    #[test]
    fn repeat_suffixes_match_formatted_ids() {
        let mut c = IdCounter::default();
        for n in 0..1200u32 {
            let id = c.next("loop");
            if n == 0 {
                assert_eq!(id.hash, hash_id("loop"));
            } else {
                assert_eq!(id.hash, hash_id(&format!("loop:{n}")), "{n}");
                assert_eq!(id.index, Some(n));
            }
        }
    }
}
