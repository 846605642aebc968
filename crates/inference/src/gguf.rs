//! What a GGUF file says about its model, read from the header without loading weights.

use std::path::Path;

use serde::Serialize;
use utoipa::ToSchema;

/// Model facts from GGUF metadata; absent when the file does not say.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct GgufMeta {
    /// e.g. `llama`, `qwen2`.
    pub architecture: Option<String>,
    /// The model's own name for itself.
    pub display_name: Option<String>,
    /// e.g. `135M`.
    pub parameters: Option<String>,
    /// e.g. `Q4_1`.
    pub quantization: Option<String>,
    /// Tokens the model was trained to attend to.
    pub context_length: Option<u64>,
    pub has_chat_template: bool,
}

/// The name of a llama.cpp file type (`general.file_type`).
pub fn file_type_name(file_type: u32) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        _ => return None,
    })
}

/// Reads the metadata; an unreadable file gives empty metadata.
#[cfg(feature = "llama")]
pub fn read_meta(path: &Path) -> GgufMeta {
    use llama_cpp_2::gguf::GgufContext;

    // GGUF value types (gguf.h).
    const UINT32: u32 = 4;
    const INT32: u32 = 5;
    const STRING: u32 = 8;
    const UINT64: u32 = 10;

    let Some(ctx) = GgufContext::from_file(path) else {
        return GgufMeta::default();
    };
    let find = |key: &str| Some(ctx.find_key(key)).filter(|i| *i >= 0);
    #[expect(
        clippy::unnecessary_cast,
        reason = "gguf_type is an integer alias or an enum depending on bindgen"
    )]
    let kind = |i: i64| ctx.kv_type(i) as u32;
    let text = |key: &str| {
        find(key)
            .filter(|i| kind(*i) == STRING)
            .and_then(|i| ctx.val_str(i).map(str::to_owned))
    };
    let number = |key: &str| {
        find(key).and_then(|i| match kind(i) {
            UINT32 => Some(u64::from(ctx.val_u32(i))),
            INT32 => u64::try_from(ctx.val_i32(i)).ok(),
            UINT64 => Some(ctx.val_u64(i)),
            _ => None,
        })
    };
    let architecture = text("general.architecture");
    GgufMeta {
        context_length: architecture
            .as_deref()
            .and_then(|arch| number(&format!("{arch}.context_length"))),
        display_name: text("general.name"),
        parameters: text("general.size_label"),
        quantization: number("general.file_type")
            .and_then(|t| u32::try_from(t).ok())
            .and_then(file_type_name)
            .map(str::to_owned),
        has_chat_template: find("tokenizer.chat_template").is_some(),
        architecture,
    }
}

/// Without the embedded engine, only the file itself is known.
#[cfg(not(feature = "llama"))]
pub fn read_meta(_path: &Path) -> GgufMeta {
    GgufMeta::default()
}
