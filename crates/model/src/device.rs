use serde::{Deserialize, Serialize};

/// What a device is, as far as fingerprinting could tell.
///
/// Every field is optional: a banner may name the vendor but not the model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Manufacturer, e.g. `"Example Networks"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Model name as printed on the device, e.g. `"XR-500"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Broad class of device (`type` in records).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub device_type: Option<DeviceType>,
    /// Firmware version string as reported by the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// Year the model was released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_year: Option<u16>,
    /// Whether the vendor has ended support for the model (`eol` in records).
    #[serde(default, rename = "eol", skip_serializing_if = "Option::is_none")]
    pub end_of_life: Option<bool>,
}

/// Broad class of an IoT device; the classes NOTICE and NICTER report on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceType {
    /// Home or small-office router.
    Router,
    /// Network (IP) camera.
    Camera,
    /// Digital video recorder.
    Dvr,
    /// Network video recorder.
    Nvr,
    /// Network-attached storage.
    Nas,
    /// Printer or multifunction device.
    Printer,
    /// Set-top box or smart TV.
    SetTopBox,
    /// Industrial or building controller.
    Controller,
    /// Any other device.
    Other,
}
