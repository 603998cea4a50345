//! [`Extensions`]: values middleware attaches to a run, read by type in the handler.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Error;

/// Typed values attached to one call by middleware ([`Input::insert`](super::Input::insert)),
/// read by the handler with [`Ctx::get`](crate::Ctx::get): dependency injection.
#[derive(Clone, Default)]
pub struct Extensions {
    map: HashMap<TypeId, (&'static str, Arc<dyn Any + Send + Sync>)>,
}

impl Extensions {
    /// Attaches `value`, replacing a value of the same type.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.insert_arc(Arc::new(value));
    }

    /// Attaches a shared value (e.g. a pool that every call reuses), replacing one of its type.
    pub fn insert_arc<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        self.map
            .insert(TypeId::of::<T>(), (std::any::type_name::<T>(), value));
    }

    /// The value of type `T`, or a non-retriable error naming the type when none was attached.
    pub fn get<T: Any + Send + Sync>(&self) -> Result<&T, Error> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|(_, v)| v.downcast_ref::<T>())
            .ok_or_else(|| missing::<T>())
    }

    /// The shared value of type `T` (see [`Extensions::get`]).
    pub fn get_arc<T: Any + Send + Sync>(&self) -> Result<Arc<T>, Error> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|(_, v)| v.clone().downcast::<T>().ok())
            .ok_or_else(|| missing::<T>())
    }

    /// One shared empty set (a call without middleware allocates none).
    pub(crate) fn empty() -> Arc<Extensions> {
        static EMPTY: std::sync::LazyLock<Arc<Extensions>> =
            std::sync::LazyLock::new(|| Arc::new(Extensions::default()));
        EMPTY.clone()
    }

    /// Whether no value is attached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn missing<T>() -> Error {
    Error::msg(format!(
        "no value of type `{}` was attached to this run: add a middleware that inserts it \
         (Input::insert) on the client or the function",
        std::any::type_name::<T>()
    ))
    .with_name("MissingDependency")
    .non_retriable()
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.map.values().map(|(name, _)| name))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Db(u32);

    #[test]
    fn values_are_read_by_type_and_a_missing_one_names_its_type() {
        let mut ext = Extensions::default();
        ext.insert(Db(7));
        assert_eq!(ext.get::<Db>().unwrap(), &Db(7));
        assert_eq!(ext.get_arc::<Db>().unwrap().0, 7);
        let err = ext.get::<String>().unwrap_err();
        assert_eq!(err.name(), "MissingDependency");
        assert!(
            err.message().contains("`alloc::string::String`"),
            "{}",
            err.message()
        );
        assert!(!err.is_retriable());
        assert_eq!(
            format!("{ext:?}"),
            format!("{{{:?}}}", std::any::type_name::<Db>())
        );
    }
}
