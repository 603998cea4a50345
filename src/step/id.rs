//! Step ids: the protocol's hashed ids (`hex(SHA-1(id))`, `id:n` for the n-th repeat).

use std::collections::HashMap;

use sha1::{Digest, Sha1};

/// Lowercase hex SHA-1 of a step id, as it appears in ops, `steps` keys and the stack.
///
/// ```
/// assert_eq!(
///     inngest_sdk::step::hash_id("my-step-id"),
///     "e7d8a2f140845095749d60246ff1110c9d01d76a"
/// );
/// ```
pub fn hash_id(id: &str) -> String {
    let digest = Sha1::digest(id.as_bytes());
    hex::encode(digest)
}

/// Per-call counter turning user step ids into hashed ids, repeats included.
#[derive(Debug, Default)]
pub(crate) struct IdCounter {
    seen: HashMap<String, u32>,
}

/// A step's identity within one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepId {
    /// The user's id.
    pub user: String,
    /// Repeat index (`None` for the first occurrence).
    pub index: Option<u32>,
    /// Hashed id.
    pub hash: String,
}

impl IdCounter {
    /// The id of the next occurrence of `user` in code order.
    pub fn next(&mut self, user: &str) -> StepId {
        let n = match self.seen.get_mut(user) {
            Some(n) => {
                *n += 1;
                *n
            }
            None => {
                self.seen.insert(user.to_owned(), 0);
                0
            }
        };
        let (index, hash) = if n == 0 {
            (None, hash_id(user))
        } else {
            (Some(n), hash_id(&format!("{user}:{n}")))
        };
        StepId {
            user: user.to_owned(),
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
}
