; The zila installer (Debian's nsis: makensis), made by `make windows`: zila.exe in Program
; Files, the replica of this machine in %ProgramData%\zila, the service "zila" started at boot,
; firewall rules for TCP 7400 (sync) and UDP 7401 (LAN beacons) on private networks only, a
; Start-menu entry that opens the web interface. The uninstaller keeps the replica unless asked
; (a box to tick, or /PURGE: `uninstall.exe /S /PURGE`).
; A 64-bit installer (Debian's nsis ships the amd64-unicode stubs and plugins): it runs under
; wine64 alone, and on Windows it sees the 64-bit Program Files and registry without redirection.
Target amd64-unicode
!include FileFunc.nsh
SetCompressor /SOLID lzma
!ifndef OUTFILE
!define OUTFILE "zila-setup.exe"
!endif
!ifndef EXE
!define EXE "zila.exe"
!endif
Name "zila"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\zila"
RequestExecutionLevel admin
ShowInstDetails show
ShowUninstDetails show
!define DATA "$COMMONPROGRAMDATA\zila"
!define UNINST "Software\Microsoft\Windows\CurrentVersion\Uninstall\zila"
; the build's time is not in the installer: the same tree gives the same file
SetDateSave off

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

Function .onInit
  SetShellVarContext all
  SetRegView 64
FunctionEnd

Section "zila"
  SetOutPath "$INSTDIR"
  ; an update: the running service lets go of zila.exe first ('net stop' waits until it has
  ; stopped; 'sc stop' returns at once, and a slow stop would leave zila.exe in use)
  nsExec::ExecToLog 'net stop zila'
  Sleep 1000
  File "${EXE}"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateDirectory "${DATA}"
  IfFileExists "${DATA}\zila.db" +2 0
    nsExec::ExecToLog '"$INSTDIR\zila.exe" -d "${DATA}" init'
  ; the service (zila service install), started now and at every boot
  nsExec::ExecToLog '"$INSTDIR\zila.exe" service uninstall'
  nsExec::ExecToLog '"$INSTDIR\zila.exe" -d "${DATA}" service install'
  nsExec::ExecToLog 'net start zila'
  ; Windows Defender Firewall: sync and beacons from private networks only (not public Wi-Fi)
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="zila sync (TCP 7400)"'
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="zila LAN beacons (UDP 7401)"'
  nsExec::ExecToLog 'netsh advfirewall firewall add rule name="zila sync (TCP 7400)" dir=in action=allow protocol=TCP localport=7400 profile=private program="$INSTDIR\zila.exe"'
  nsExec::ExecToLog 'netsh advfirewall firewall add rule name="zila LAN beacons (UDP 7401)" dir=in action=allow protocol=UDP localport=7401 profile=private program="$INSTDIR\zila.exe"'
  ; the Start menu: the web interface (zila open), and the replica's folder
  CreateDirectory "$SMPROGRAMS\zila"
  CreateShortCut "$SMPROGRAMS\zila\zila.lnk" "$INSTDIR\zila.exe" '-d "${DATA}" open' "$INSTDIR\zila.exe" 0 SW_SHOWMINIMIZED
  ; "Run as administrator" (the link's flag SLDF_RUNAS_USER, 0x2000 at offset 0x14): the
  ; service's named pipe admits only Administrators with their full rights, so an entry run with
  ; a user's ordinary rights would be refused ("permission denied"); Windows asks (UAC) first.
  FileOpen $0 "$SMPROGRAMS\zila\zila.lnk" a
  FileSeek $0 0x15 SET
  FileReadByte $0 $1
  IntOp $1 $1 | 0x20
  FileSeek $0 0x15 SET
  FileWriteByte $0 $1
  FileClose $0
  CreateShortCut "$SMPROGRAMS\zila\zila data folder.lnk" "${DATA}"
  CreateShortCut "$SMPROGRAMS\zila\Uninstall zila.lnk" "$INSTDIR\uninstall.exe"
  WriteRegStr HKLM "${UNINST}" "DisplayName" "zila"
  WriteRegStr HKLM "${UNINST}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINST}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINST}" "Publisher" "zila"
  WriteRegDWORD HKLM "${UNINST}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINST}" "NoRepair" 1
SectionEnd

Function un.onInit
  SetShellVarContext all
  SetRegView 64
FunctionEnd

Section "Uninstall"
  nsExec::ExecToLog '"$INSTDIR\zila.exe" service uninstall'
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="zila sync (TCP 7400)"'
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="zila LAN beacons (UDP 7401)"'
  Delete "$SMPROGRAMS\zila\*.lnk"
  RMDir "$SMPROGRAMS\zila"
  Delete "$INSTDIR\zila.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "${UNINST}"
  ; The replica holds this laptop's records and its device key: kept unless asked (/PURGE;
  ; a silent uninstall, /S, without /PURGE keeps it).
  ${un.GetParameters} $R0
  ClearErrors
  ${un.GetOptions} $R0 "/PURGE" $R1
  IfErrors 0 wipe
  IfSilent keep
  MessageBox MB_YESNO|MB_DEFBUTTON2|MB_ICONEXCLAMATION "Also delete this laptop's zila records in ${DATA}?$\r$\n$\r$\nChanges not yet sent to HQ are lost, and the laptop must be enrolled again. Choose No to keep them (a later install uses them again)." IDYES wipe IDNO keep
  wipe:
    RMDir /r "${DATA}"
    Goto done
  keep:
    DetailPrint "kept the replica in ${DATA}"
  done:
SectionEnd
