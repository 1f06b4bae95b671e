// Salon's browser SDK: placeholder until the SDK lands (see sdk/js/README.md).
export const version = '0.0.0';
