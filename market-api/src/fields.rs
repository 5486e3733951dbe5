//! Serializer fields: what the API accepts and returns under each name, with
//! its limits. One table per resource (beside its handlers) is read by three
//! users: validation ([`crate::validation::Form`]), `OPTIONS`
//! (`routes::metadata`) and the OpenAPI document (`routes::openapi`), so a
//! limit is written once. This is a leaf module: it knows no HTTP and no SQL.

/// Longest text accepted for a string field that states no `max_length`
/// (token fields, login e-mail and password). Not DRF's (it has none); it
/// keeps a megabyte of text from reaching argon2 or the JWT decoder, and is
/// not shown by `OPTIONS`, which lists only the serializer's own limits.
pub const UNBOUNDED_TEXT_CAP: usize = 8192;

/// What a serializer field holds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    String,
    Email,
    Slug,
    Uuid,
    Integer,
    DateTime,
    /// A primary key of another object (`PrimaryKeyRelatedField`).
    Related,
    /// A list of primary keys (`many=True`); `max_length` caps its length.
    RelatedMany,
    /// A nested serializer, with its own fields.
    Nested(&'static [Field]),
}

/// One serializer field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    /// Must be present (PUT and POST; PATCH never requires).
    pub required: bool,
    pub read_only: bool,
    /// `null` accepted.
    pub nullable: bool,
    /// `""` accepted. In this API exactly the optional text fields allow
    /// blanks, so [`Field::required`] turns it off.
    pub allow_blank: bool,
    pub min_length: Option<u32>,
    /// Characters for text, elements for a list.
    pub max_length: Option<u32>,
    pub min_value: Option<i64>,
    pub max_value: Option<i64>,
}

impl Field {
    /// An optional, writable, non-null field without limits.
    pub const fn new(name: &'static str, kind: Kind) -> Field {
        Field {
            name,
            kind,
            required: false,
            read_only: false,
            nullable: false,
            allow_blank: true,
            min_length: None,
            max_length: None,
            min_value: None,
            max_value: None,
        }
    }

    pub const fn required(self) -> Field {
        Field {
            required: true,
            allow_blank: false,
            ..self
        }
    }

    /// Output only (DRF makes a read-only field never required).
    pub const fn read_only(self) -> Field {
        Field {
            read_only: true,
            required: false,
            ..self
        }
    }

    pub const fn nullable(self) -> Field {
        Field {
            nullable: true,
            ..self
        }
    }

    pub const fn min_length(self, n: u32) -> Field {
        Field {
            min_length: Some(n),
            ..self
        }
    }

    pub const fn max_length(self, n: u32) -> Field {
        Field {
            max_length: Some(n),
            ..self
        }
    }

    pub const fn range(self, min: i64, max: i64) -> Field {
        Field {
            min_value: Some(min),
            max_value: Some(max),
            ..self
        }
    }

    /// The most characters (or list elements) accepted.
    pub fn cap(&self) -> usize {
        self.max_length.map_or(UNBOUNDED_TEXT_CAP, |n| n as usize)
    }

    /// Django's default label: the name with spaces, first letter upper
    /// case; `id` is `ID` (the verbose name of Django's automatic key).
    pub fn label(&self) -> String {
        if self.name == "id" {
            return "ID".to_owned();
        }
        let text = self.name.replace('_', " ");
        let mut chars = text.chars();
        chars.next().map_or_else(String::new, |first| {
            first.to_uppercase().chain(chars).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_caps() {
        assert_eq!(Field::new("id", Kind::Integer).label(), "ID");
        assert_eq!(Field::new("first_name", Kind::String).label(), "First name");
        let title = Field::new("title", Kind::String).required().max_length(130);
        assert_eq!((title.cap(), title.allow_blank), (130, false));
        assert_eq!(Field::new("token", Kind::String).cap(), UNBOUNDED_TEXT_CAP);
    }
}
