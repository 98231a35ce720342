//! Attribute names fleetpipe writes on the records it tags (see `docs/architecture.md`,
//! "Names on the wire").

/// The names of the registry tags: `<prefix>id`, `<prefix>name`, … on records, and the layer
/// on resources. The enrich processor writes them; analytics reads them under the same names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagNames {
    /// Prefix of the record tags, e.g. `integration.`.
    pub prefix: String,
    /// Resource attribute carrying the agent's operating-model layer.
    pub layer: String,
}

impl Default for TagNames {
    fn default() -> Self {
        TagNames {
            prefix: "integration.".into(),
            layer: "operating_model.layer".into(),
        }
    }
}

/// One of the record tags, by what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Id,
    Name,
    Category,
    Kind,
    Connection,
    Registered,
    Target,
}

impl Tag {
    pub const ALL: [Tag; 7] = [
        Tag::Id,
        Tag::Name,
        Tag::Category,
        Tag::Kind,
        Tag::Connection,
        Tag::Registered,
        Tag::Target,
    ];

    /// The tag's name after the prefix.
    pub fn suffix(self) -> &'static str {
        match self {
            Tag::Id => "id",
            Tag::Name => "name",
            Tag::Category => "category",
            Tag::Kind => "kind",
            Tag::Connection => "connection",
            Tag::Registered => "registered",
            Tag::Target => "target",
        }
    }

    /// The tag `suffix` names.
    fn of_suffix(suffix: &[u8]) -> Option<Tag> {
        Some(match suffix {
            b"id" => Tag::Id,
            b"name" => Tag::Name,
            b"category" => Tag::Category,
            b"kind" => Tag::Kind,
            b"connection" => Tag::Connection,
            b"registered" => Tag::Registered,
            b"target" => Tag::Target,
            _ => return None,
        })
    }
}

impl TagNames {
    /// The full name of `tag`.
    pub fn name(&self, tag: Tag) -> String {
        format!("{}{}", self.prefix, tag.suffix())
    }

    /// Whether `key` starts with the tag prefix. The first byte is compared on its own: it
    /// tells most keys apart without a call to `memcmp` (`cargo bench --bench enrich`).
    #[inline]
    pub fn has_prefix(&self, key: &[u8]) -> bool {
        let prefix = self.prefix.as_bytes();
        match (key.first(), prefix.first()) {
            (Some(k), Some(p)) => k == p && key.starts_with(prefix),
            (_, None) => true,
            (None, Some(_)) => false,
        }
    }

    /// The record tag `key` is, if it is one.
    #[inline]
    pub fn tag(&self, key: &[u8]) -> Option<Tag> {
        if !self.has_prefix(key) {
            return None;
        }
        Tag::of_suffix(&key[self.prefix.len()..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: tags are found under any prefix, and only their exact names are.
    #[test]
    fn finds_tags_under_a_prefix() {
        let names = TagNames {
            prefix: "fp.".into(),
            layer: "fp.layer".into(),
        };
        for tag in Tag::ALL {
            assert_eq!(names.tag(names.name(tag).as_bytes()), Some(tag));
            assert_eq!(TagNames::default().tag(names.name(tag).as_bytes()), None);
        }
        assert_eq!(names.tag(b"fp."), None);
        assert_eq!(names.tag(b"fp.idx"), None);
        assert_eq!(names.tag(b"integration.id"), None);
    }
}
