//! Where a lab comes from: built into the binary (the repository's `labs/NAME/`, embedded) or a
//! folder a trainer wrote, and `lab validate`'s checks of one.

use std::collections::BTreeMap;
use std::path::Path;

use include_dir::{Dir, include_dir};
use mailrig_core::located::LocatedError;

use super::render::{self, Vars};
use super::spec::{self, LabKind, LabSpec};

static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../labs");

/// A lab, read and parsed.
#[derive(Debug, Clone)]
pub struct LabSource {
    /// The lab's name: its folder's name.
    pub name: String,
    /// `builtin` or the folder's path.
    pub origin: String,
    pub spec: LabSpec,
    /// The broken start: path relative to the lab directory → contents (templates).
    pub files: BTreeMap<String, Vec<u8>>,
    /// The reference fix, laid over `files`.
    pub fix: BTreeMap<String, Vec<u8>>,
    /// How `lab.toml` is named in errors.
    pub toml_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "no lab named '{0}' (`mailrig lab list` shows the built-in labs; a path to a folder with a lab.toml works too)"
    )]
    Unknown(String),
    #[error("{0}")]
    Located(#[from] LocatedError),
    #[error("{path}: {message}")]
    Folder { path: String, message: String },
}

/// The names of the built-in labs, sorted.
pub fn builtin_names() -> Vec<String> {
    let mut names: Vec<String> = BUILTIN
        .dirs()
        .filter(|d| d.get_file(d.path().join("lab.toml")).is_some())
        .filter_map(|d| d.path().file_name()?.to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// A built-in lab by name, or a lab folder when `name_or_path` is a directory (or contains `/`).
pub fn find(name_or_path: &str) -> Result<LabSource, SourceError> {
    let path = Path::new(name_or_path);
    if name_or_path.contains('/') || path.join("lab.toml").is_file() {
        return from_folder(path);
    }
    let dir = BUILTIN
        .get_dir(name_or_path)
        .ok_or_else(|| SourceError::Unknown(name_or_path.to_string()))?;
    let toml_name = format!("labs/{name_or_path}/lab.toml");
    let text = dir
        .get_file(dir.path().join("lab.toml"))
        .and_then(|f| f.contents_utf8())
        .ok_or_else(|| SourceError::Unknown(name_or_path.to_string()))?;
    let spec = spec::parse(&toml_name, text)?;
    let mut files = BTreeMap::new();
    let mut fix = BTreeMap::new();
    for (sub, out) in [("files", &mut files), ("fix", &mut fix)] {
        if let Some(d) = dir.get_dir(dir.path().join(sub)) {
            collect_embedded(d, d.path(), out);
        }
    }
    Ok(LabSource {
        name: name_or_path.to_string(),
        origin: "builtin".into(),
        spec,
        files,
        fix,
        toml_name,
    })
}

fn collect_embedded(dir: &Dir<'_>, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for f in dir.files() {
        if let Ok(rel) = f.path().strip_prefix(root) {
            out.insert(rel.to_string_lossy().into_owned(), f.contents().to_vec());
        }
    }
    for d in dir.dirs() {
        collect_embedded(d, root, out);
    }
}

/// A lab folder on disk.
pub fn from_folder(path: &Path) -> Result<LabSource, SourceError> {
    let folder_err = |message: String| SourceError::Folder {
        path: path.display().to_string(),
        message,
    };
    let toml_path = path.join("lab.toml");
    let toml_name = toml_path.display().to_string();
    let text = std::fs::read_to_string(&toml_path)
        .map_err(|e| LocatedError::read(&toml_name, "lab", e))?;
    let spec = spec::parse(&toml_name, &text)?;
    let mut files = BTreeMap::new();
    let mut fix = BTreeMap::new();
    for (sub, out) in [("files", &mut files), ("fix", &mut fix)] {
        let root = path.join(sub);
        if root.is_dir() {
            collect_folder(&root, &root, out).map_err(|e| folder_err(format!("{sub}/: {e}")))?;
        }
    }
    let name = std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "lab".into());
    Ok(LabSource {
        name,
        origin: std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string(),
        spec,
        files,
        fix,
        toml_name,
    })
}

fn collect_folder(
    dir: &Path,
    root: &Path,
    out: &mut BTreeMap<String, Vec<u8>>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            collect_folder(&p, root, out)?;
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.insert(rel.to_string_lossy().into_owned(), std::fs::read(&p)?);
        }
    }
    Ok(())
}

impl LabSource {
    /// Where the lab's files are named in errors: `labs/NAME/files/x` or `FOLDER/files/x`.
    fn file_name(&self, sub: &str, rel: &str) -> String {
        let base = self
            .toml_name
            .strip_suffix("lab.toml")
            .unwrap_or(&self.toml_name);
        format!("{base}{sub}/{rel}")
    }

    /// Renders one template of `files/` or `fix/`, errors located in that file.
    pub fn render_file(
        &self,
        sub: &str,
        rel: &str,
        bytes: &[u8],
        vars: &Vars,
    ) -> Result<Vec<u8>, LocatedError> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Ok(bytes.to_vec()); // binary files are copied as they are
        };
        render::render(text, vars)
            .map(String::into_bytes)
            .map_err(|e| LocatedError::at(&self.file_name(sub, rel), text, e.offset, e.message))
    }

    /// Renders a string of `lab.toml` (a command, a helpful line).
    pub fn render_str(&self, what: &str, text: &str, vars: &Vars) -> Result<String, SourceError> {
        render::render(text, vars).map_err(|e| SourceError::Folder {
            path: self.toml_name.clone(),
            message: format!("{what} '{text}': {}", e.message),
        })
    }

    /// Whether the lab's servers run as another user (its templates name `{{uid:USER}}` or
    /// `{{gid:USER}}`): then every parent of the lab directory must be searchable by others.
    pub fn drops_root(&self) -> bool {
        let names = |t: &str| t.contains("{{uid:") || t.contains("{{gid:");
        self.files
            .values()
            .chain(self.fix.values())
            .any(|b| names(&String::from_utf8_lossy(b)))
            || self.spec.setup.iter().flatten().any(|a| names(a))
    }

    /// Everything `lab validate` checks beyond `lab.toml`'s own syntax: every template and command
    /// renders, editable files and probe targets exist, a fix-it lab has a fix touching only
    /// editable files, a find-it lab has a solution.
    pub fn validate(&self) -> Result<(), SourceError> {
        let vars = Vars {
            dir: "/tmp/mailrig-lab-validate".into(),
            run: "/tmp/mailrig-lab-run".into(),
            id: "00000000".into(),
            mailrig: "mailrig".into(),
            ports: self
                .spec
                .ports
                .iter()
                .map(|(k, v)| (k.clone(), 20000 + *v.get_ref()))
                .collect(),
        };
        for (sub, set) in [("files", &self.files), ("fix", &self.fix)] {
            for (rel, bytes) in set {
                self.render_file(sub, rel, bytes, &vars)?;
            }
        }
        for argv in &self.spec.setup {
            for a in argv {
                self.render_str("setup command", a, &vars)?;
            }
        }
        for s in &self.spec.service {
            for a in s.get_ref().run.iter().chain(s.get_ref().env.values()) {
                self.render_str("service command", a, &vars)?;
            }
        }
        for h in &self.spec.helpful {
            self.render_str("helpful command", h, &vars)?;
        }
        let err = |message: String| SourceError::Folder {
            path: self.toml_name.clone(),
            message,
        };
        for e in &self.spec.editable {
            if !self.files.contains_key(e.get_ref()) {
                return Err(err(format!(
                    "editable file '{}' is not in files/",
                    e.get_ref()
                )));
            }
        }
        for c in &self.spec.check {
            if let Some(p) = &c.get_ref().probe
                && !self.files.contains_key(p)
            {
                return Err(err(format!(
                    "check '{}': probe target '{p}' is not in files/",
                    c.get_ref().name
                )));
            }
        }
        match self.spec.kind {
            LabKind::FixIt => {
                if self.fix.is_empty() {
                    return Err(err("a fix-it lab needs its reference fix in fix/".into()));
                }
                for rel in self.fix.keys() {
                    if !self.spec.editable.iter().any(|e| e.get_ref() == rel) {
                        return Err(err(format!(
                            "fix/{rel} changes a file the trainee may not edit (add it to `editable`)"
                        )));
                    }
                }
            }
            LabKind::FindIt => {
                if self.spec.solution.is_none() {
                    return Err(err("a find-it lab needs a [solution]".into()));
                }
            }
        }
        Ok(())
    }
}
