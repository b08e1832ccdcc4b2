//! The `wire_enum!` macro: a newtype over the wire integer with named
//! constants. Unknown values are kept as they are, so decode→encode is
//! lossless and the state machine decides what an unknown value means.

/// Define a wire enum newtype with named constants.
#[macro_export]
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident($t:ty) { $($c:ident = $v:expr,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $t);
        #[allow(missing_docs)]
        impl $name {
            $( pub const $c: $name = $name($v); )*
            /// The registry name, if this value is one we know.
            pub fn name(self) -> Option<&'static str> {
                $( if self.0 == $v { return Some(stringify!($c)); } )*
                None
            }
            /// The raw wire value.
            pub fn get(self) -> $t { self.0 }
        }
        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}", n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }
        impl From<$t> for $name {
            fn from(v: $t) -> Self { $name(v) }
        }
        impl From<$name> for $t {
            fn from(v: $name) -> Self { v.0 }
        }
    };
}
